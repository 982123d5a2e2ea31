package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/revocation"
)

// revokeCmd writes a revocation to etcd; every enforcer denies the token(s) within
// milliseconds, and the record's lease ends when the token would have expired.
func revokeCmd(g *globals) *cobra.Command {
	var r revocation.Request
	var until, before string
	cmd := &cobra.Command{
		Use:   "revoke (--jti ID --until T | --token T | --subject S --issued-before T | --client-id C --issued-before T)",
		Short: "Revoke a token, or every token of a subject or client issued before a time",
		Long: `Write a revocation to etcd: every enforcer denies the token within milliseconds, cached
or not, and etcd drops the record when the token would have expired. One token by its jti
(with --until, its expiry) or by the token itself (a JWT's jti and exp are read from it; an
opaque token is revoked by its hash and needs --until); or every token of a subject or a
client issued before a time.`,
		Example: `  tollgate revoke --jti 6f1c2e --until 1h --reason "laptop stolen"
  tollgate revoke --token "$TOKEN"
  tollgate revoke --subject alice --issued-before now`,
		Args: noArgs,
	}
	c := addCommon(cmd.Flags(), g)
	f := cmd.Flags()
	f.StringVar(&r.JTI, "jti", "", "the token's jti (needs --until)")
	f.StringVar(&r.Token, "token", "", "the token itself (a JWT's jti and exp are read from it; an opaque token is revoked by its hash and needs --until)")
	f.StringVar(&r.Subject, "subject", "", "revoke every token of this subject issued before --issued-before")
	f.StringVar(&r.ClientID, "client-id", "", "revoke every token of this client issued before --issued-before")
	f.StringVar(&r.Reason, "reason", "", "why (kept with the record)")
	f.StringVar(&until, "until", "", "when the token expires: RFC 3339 time, or a duration from now (\"1h\")")
	f.StringVar(&before, "issued-before", "", "RFC 3339 time, \"now\", or a duration ago (\"10m\")")
	cmd.RunE = withStore(c, func(ctx context.Context, st *store.Store, _ []string) error {
		var err error
		if r.Until, err = parseTime(until, 1); err != nil {
			return usageError{fmt.Errorf("--until: %w", err)}
		}
		if r.IssuedBefore, err = parseTime(before, -1); err != nil {
			return usageError{fmt.Errorf("--issued-before: %w", err)}
		}
		kind, id, rec, err := r.Resolve()
		if err != nil {
			return err
		}
		key, rev, err := revocation.Revoke(ctx, st, kind, id, rec)
		if err != nil {
			return err
		}
		fmt.Printf("revoked %s until %s at revision %d\n", key, rec.Until.Format(time.RFC3339), rev)
		return nil
	})
	return cmd
}

// parseTime reads an RFC 3339 time, "now", or a duration from now (sign +1) or ago (-1).
func parseTime(s string, sign time.Duration) (time.Time, error) {
	switch s {
	case "":
		return time.Time{}, nil
	case "now":
		return time.Now(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time or a duration", s)
	}
	return time.Now().Add(sign * d), nil
}
