package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
)

// checkCmd sends one CheckRequest, shaped as Envoy sends it, and prints the decision.
func checkCmd(g *globals) *cobra.Command {
	var addr, method, path, host, api, op, ca, cert, key, serverName, data string
	var hs []string
	cmd := &cobra.Command{
		Use:   "check --path PATH [-H 'Name: value']...",
		Short: "Send one Envoy-shaped CheckRequest to the enforcer and print the decision",
		Long: `Send one CheckRequest to the enforcer, shaped as Envoy's ext_authz filter sends it
(lower-case header names, pseudo-headers, the path with its query, a request id), and print
the decision: ALLOWED with the headers set for the backend and the dynamic metadata, or
DENIED with the status, headers and body the client would get. Exit code 3 on a denial.
--api and --operation set the route metadata the control plane's routes carry; without
them the enforcer finds the API by host, method and path.`,
		Example: `  TOKEN=$(tollgate token --scope read:menu)
  tollgate check --method GET --path /coffeebar/v1/menu -H "Authorization: Bearer $TOKEN"
  tollgate check --method POST --path /petstore/v1/pets -H "Content-Type: application/json" -d '{"name":"rex"}'
  tollgate check --authz 10.0.0.7:9191 --path /petstore/v1/pets --api petstore/v1 --operation "GET /pets"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if addr == "" {
				addr = cfg.Authz.Listen
			}
			headers := map[string]string{}
			for _, h := range hs {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					return usageError{fmt.Errorf("header %q: want \"Name: value\"", h)}
				}
				headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			r := extauthz.Request{Method: strings.ToUpper(method), Path: path, Host: host, Headers: headers}
			if data != "" {
				body, err := readData(data)
				if err != nil {
					return usageError{err}
				}
				r.Body = body
			}
			if api != "" {
				r.ContextExtensions = map[string]string{apimodel.RouteKeyAPI: api, apimodel.RouteKeyOperation: op}
			}
			creds := insecure.NewCredentials()
			switch {
			case ca != "":
				t, err := tlsfiles.Client(ca, cert, key, serverName)
				if err != nil {
					return usageError{fmt.Errorf("--ca/--cert/--key: %w", err)}
				}
				creds = credentials.NewTLS(t)
			case cfg.Authz.ServerTLS.CertFile != "":
				return usageError{fmt.Errorf("the enforcer serves TLS (authz.serverTLS): give --ca (and --cert/--key for mutual TLS)")}
			}
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, extauthz.NewCheckRequest(r))
			if err != nil {
				return fmt.Errorf("check at %s: %w", addr, err)
			}
			printDecision(resp)
			if resp.GetDeniedResponse() != nil {
				return exitCode(exitDenied)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "authz", "", "enforcer address (default: the configuration's authz.listen)")
	f.StringVar(&ca, "ca", "", "TLS to the enforcer (authz.serverTLS): the CA that signed its certificate")
	f.StringVar(&cert, "cert", "", "mutual TLS: this client's certificate")
	f.StringVar(&key, "key", "", "mutual TLS: this client's key")
	f.StringVar(&serverName, "server-name", "", "the name in the enforcer's certificate (default: the address's host)")
	f.StringVar(&method, "method", "GET", "HTTP method")
	f.StringVar(&path, "path", "/", "request path, with the query string")
	f.StringVar(&host, "host", "localhost", "Host / :authority")
	f.StringVar(&api, "api", "", "route metadata: API id (name/version), as the control plane sets it")
	f.StringVar(&op, "operation", "", `route metadata: operation key ("GET /menu")`)
	f.StringArrayVarP(&hs, "header", "H", nil, `request header "Name: value"; repeatable`)
	f.StringVarP(&data, "data", "d", "", "request body, as Envoy sends a validated operation's (@FILE reads a file, @- standard input)")
	return cmd
}

// readData is --data's body: the text, or a file's bytes for @FILE (@- standard input).
func readData(data string) ([]byte, error) {
	name, ok := strings.CutPrefix(data, "@")
	switch {
	case !ok:
		return []byte(data), nil
	case name == "-":
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	return b, nil
}

func printDecision(resp *authv3.CheckResponse) {
	if d := resp.GetDeniedResponse(); d != nil {
		fmt.Printf("DENIED %d\n", d.GetStatus().GetCode())
		for _, h := range d.GetHeaders() {
			fmt.Printf("%s: %s\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		fmt.Printf("\n%s\n", d.GetBody())
		return
	}
	fmt.Println("ALLOWED 200")
	ok := resp.GetOkResponse()
	for _, h := range ok.GetHeaders() {
		fmt.Printf("%s: %s   (set for the backend)\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
	}
	for _, h := range ok.GetResponseHeadersToAdd() {
		fmt.Printf("%s: %s   (added to the response)\n", h.GetHeader().GetKey(), h.GetHeader().GetValue())
	}
	for _, h := range ok.GetHeadersToRemove() {
		fmt.Printf("%s   (removed before the backend)\n", h)
	}
	md := resp.GetDynamicMetadata().AsMap()
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("metadata %s:%s = %v\n", extauthz.MetadataNamespace, k, md[k])
	}
}
