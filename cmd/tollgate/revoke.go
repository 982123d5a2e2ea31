package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/tollgate-gw/tollgate/policies/revocation"
)

// revokeCmd writes a revocation to etcd; every enforcer denies the token(s) within
// milliseconds, and the record's lease ends when the token would have expired.
func revokeCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	var c common
	c.register(fs)
	var r revocation.Request
	fs.StringVar(&r.JTI, "jti", "", "the token's jti (needs --until)")
	fs.StringVar(&r.Token, "token", "", "the token itself (a JWT's jti and exp are read from it; an opaque token is revoked by its hash and needs --until)")
	fs.StringVar(&r.Subject, "subject", "", "revoke every token of this subject issued before --issued-before")
	fs.StringVar(&r.ClientID, "client-id", "", "revoke every token of this client issued before --issued-before")
	fs.StringVar(&r.Reason, "reason", "", "why (kept with the record)")
	until := fs.String("until", "", "when the token expires: RFC 3339 time, or a duration from now (\"1h\")")
	before := fs.String("issued-before", "", "RFC 3339 time, \"now\", or a duration ago (\"10m\")")
	if err := fs.Parse(args); err != nil {
		return errReported
	}
	var err error
	if r.Until, err = parseTime(*until, 1); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	if r.IssuedBefore, err = parseTime(*before, -1); err != nil {
		return fmt.Errorf("--issued-before: %w", err)
	}
	kind, id, rec, err := r.Resolve()
	if err != nil {
		return err
	}
	_, st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := revocation.Revoke(ctx, st, kind, id, rec)
	if err != nil {
		return err
	}
	fmt.Printf("revoked %s until %s\n", key, rec.Until.Format(time.RFC3339))
	return nil
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
