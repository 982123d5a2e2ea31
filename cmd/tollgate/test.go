package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tollgate-gw/tollgate/cmd/tollgate/internal/decisiontest"
	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/definitions"
)

// testCmd runs decision tests offline.
func testCmd(g *globals) *cobra.Command {
	var verbose bool
	var via string
	cmd := &cobra.Command{
		Use:   "test -f DEFINITIONS... CASES...",
		Short: "Run decision tests offline: requests decided by the enforcer's own pipeline",
		Long: `Run decision tests the way ` + "`opa test`" + ` runs policy tests: every case of the
DecisionTests documents given (beside the definitions they test, in the same -f list) is
a request and a credential, decided in-process by the enforcer's own pipeline over the
given definitions — no etcd, no servers — and compared with what it expects: the status,
the fault code, the headers sent to the backend, throttling after N requests. Tokens are
minted by a test issuer; API keys and basic-auth users are made for each case. The
configuration's authz.claimHeaders, authz.faultFormat and faults apply. Exit code 1 when a case
fails, with what differed. The case format is in the README (Decision tests).`,
		Example: `  tollgate test -f examples/coffeebar/
  tollgate test -f api.yaml -f policies.yaml api.cases.yaml`,
	}
	files := definitionFiles(cmd)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print passing cases too")
	cmd.Flags().StringVar(&via, "via", "match", "how requests reach the enforcer: match (no route metadata: a hand-written Envoy), envoy (through the routes the control plane generates; Envoy answers 405s itself), istio (as Istio's sidecar sends them to a CUSTOM provider)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fl, err := files(args)
		if err != nil {
			return err
		}
		cfg, err := g.loadConfig()
		if err != nil {
			return err
		}
		defs, ok := loadDefinitions(fl, cfg)
		if !ok {
			return errReported
		}
		suites := map[string]decisiontest.Suite{}
		var apis []definitions.Definition
		for _, d := range defs {
			if !d.Tests {
				apis = append(apis, d)
				continue
			}
			s, err := decisiontest.Parse(d.Data)
			if err != nil {
				return fmt.Errorf("%s: %w", d.File, err)
			}
			suites[d.File] = s
		}
		if len(suites) == 0 {
			return usageError{fmt.Errorf("no decision tests (kind: %s) among the files", definitions.TestsKind)}
		}
		results, err := decisiontest.Run(cmd.Context(), apis, suites,
			decisiontest.Options{ClaimHeaders: cfg.Authz.ClaimHeaders, Format: extauthz.Format(cfg.Authz.FaultFormat), Template: customTemplate(cfg), Via: decisiontest.Via(via)})
		if err != nil {
			return err
		}
		failed := 0
		for _, r := range results {
			if r.Passed {
				if verbose {
					fmt.Printf("PASS  %s: %s\n", r.Suite, r.Name)
				}
				continue
			}
			failed++
			fmt.Printf("FAIL  %s: %s\n", r.Suite, r.Name)
			for _, d := range r.Diff {
				fmt.Printf("        %s\n", d)
			}
		}
		fmt.Printf("%d passed, %d failed\n", len(results)-failed, failed)
		if failed > 0 {
			os.Stdout.Sync()
			return errReported
		}
		return nil
	}
	return cmd
}
