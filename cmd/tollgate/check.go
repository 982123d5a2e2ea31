package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/config"
)

// checkCmd sends one CheckRequest, shaped as Envoy sends it, and prints the decision.
func checkCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	configFile := fs.String("config", "", "config file (for authz.listen)")
	addr := fs.String("authz", "", "enforcer address (default: the config's authz.listen)")
	method := fs.String("method", "GET", "HTTP method")
	path := fs.String("path", "/", "request path, with the query string")
	host := fs.String("host", "localhost", "Host / :authority")
	api := fs.String("api", "", "route metadata: API id (name/version), as the control plane sets it")
	op := fs.String("operation", "", `route metadata: operation key ("GET /menu")`)
	var hs files
	fs.Var(&hs, "H", `request header "Name: value"; repeatable`)
	if err := fs.Parse(args); err != nil {
		return errReported
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		return err
	}
	if *addr == "" {
		*addr = cfg.Authz.Listen
	}
	headers := map[string]string{}
	for _, h := range hs {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("header %q: want \"Name: value\"", h)
		}
		headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	r := extauthz.Request{Method: strings.ToUpper(*method), Path: *path, Host: *host, Headers: headers}
	if *api != "" {
		r.ContextExtensions = map[string]string{apimodel.RouteKeyAPI: *api, apimodel.RouteKeyOperation: *op}
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, extauthz.NewCheckRequest(r))
	if err != nil {
		return fmt.Errorf("check at %s: %w", *addr, err)
	}
	printDecision(resp)
	if resp.GetDeniedResponse() != nil {
		os.Exit(3)
	}
	return nil
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
