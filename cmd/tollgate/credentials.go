package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/spf13/cobra"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/apikey"
	"github.com/tollgate-gw/tollgate/policies/basic"
)

// readPassword reads one line from standard input, so the password stays out of the
// shell history and the process list.
func readPassword() (string, error) {
	fmt.Fprint(os.Stderr, "password: ")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password on standard input")
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		return "", errors.New("a password needs at least 8 characters")
	}
	return pw, nil
}

// hashCmd prints a password hash for authz.basicUsers.
func hashCmd() *cobra.Command {
	var useArgon bool
	cmd := &cobra.Command{
		Use:   "hash [--argon2id]",
		Short: "Print a bcrypt (or argon2id) hash of a password read from standard input",
		Long: `Print a hash of a password read from standard input (so that it stays out of the shell
history and the process list), for authz.basicUsers: bcrypt at cost 11, or argon2id with
--argon2id (bcrypt reads only a password's first 72 bytes, so longer ones need argon2id).`,
		Example: `  tollgate hash < password.txt
  echo 'correct horse battery' | tollgate hash --argon2id`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			h, err := readHash(useArgon)
			if err != nil {
				return err
			}
			fmt.Println(h)
			return nil
		},
	}
	cmd.Flags().BoolVar(&useArgon, "argon2id", false, "argon2id instead of bcrypt")
	return cmd
}

// readHash reads a password from standard input and hashes it.
func readHash(useArgon bool) (string, error) {
	pw, err := readPassword()
	if err != nil {
		return "", err
	}
	return hashPassword(pw, useArgon)
}

func hashPassword(pw string, useArgon bool) (string, error) {
	if !useArgon {
		h, err := basic.Hash(pw)
		if errors.Is(err, basic.ErrTooLong) {
			return "", fmt.Errorf("%w: use --argon2id for this password", err)
		}
		return h, err
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	const memory, iterations, threads = 64 * 1024, 3, 2
	sum := argon2.IDKey([]byte(pw), salt, iterations, memory, threads, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", memory, iterations, threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

// userCmd stores or removes basic-auth users in etcd (users/<name> holds the hash).
func userCmd(g *globals) *cobra.Command {
	var useArgon bool
	put := &cobra.Command{
		Use:   "put NAME [--argon2id]",
		Short: "Store a basic-auth user (password on standard input, stored hashed)",
		Long: `Store users/NAME with the hash of a password read from standard input (at least 8
characters): bcrypt at cost 11, or argon2id with --argon2id.`,
		Example: "  tollgate user put alice < alice.password",
		Args:    exactArgs(1),
	}
	pc := addCommon(put.Flags(), g)
	put.Flags().BoolVar(&useArgon, "argon2id", false, "hash with argon2id instead of bcrypt")
	put.RunE = withStore(pc, func(ctx context.Context, st *store.Store, args []string) error {
		name := args[0]
		if err := userName(name); err != nil {
			return err
		}
		h, err := readHash(useArgon)
		if err != nil {
			return err
		}
		rev, err := st.Put(ctx, store.Users+name, h)
		if err != nil {
			return err
		}
		fmt.Printf("stored user %s at revision %d\n", name, rev)
		return nil
	})
	del := &cobra.Command{Use: "delete NAME", Short: "Remove a basic-auth user",
		Long:    "Remove users/NAME; every enforcer refuses the user's credentials within milliseconds\n(unless authz.basicUsers also holds the user).",
		Example: "  tollgate user delete alice", Args: exactArgs(1)}
	dc := addCommon(del.Flags(), g)
	del.RunE = withStore(dc, func(ctx context.Context, st *store.Store, args []string) error {
		if err := userName(args[0]); err != nil {
			return err
		}
		n, rev, err := st.Delete(ctx, store.Users+args[0])
		if err != nil {
			return err
		}
		fmt.Printf("deleted user %s at revision %d%s\n", args[0], rev, notSet(n))
		return nil
	})
	return group("user", "Basic-auth users in etcd",
		`Users for HTTP basic authentication, stored in etcd as users/NAME holding the password's
hash (bcrypt or argon2id); every enforcer takes a change within milliseconds. Users may also
be configured in authz.basicUsers.`,
		"  tollgate user put alice < alice.password\n  tollgate user delete alice", put, del)
}

func userName(name string) error {
	if name == "" || strings.ContainsAny(name, ":/ ") {
		return usageError{fmt.Errorf("user name %q must not hold ':', '/' or spaces", name)}
	}
	return nil
}

// apikeyCmd creates, lists and revokes API keys.
func apikeyCmd(g *globals) *cobra.Command {
	var app string
	var apis []string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create --app APP --api NAME/VERSION...",
		Short: "Create an API key (printed once; only its hash is stored)",
		Long: `Create a random API key for an application and the APIs it opens ("name/version", or
"*" for all), optionally with a lifetime. The key is printed once on standard output; etcd
keeps only its SHA-256, with the application, the APIs and the expiry.`,
		Example: `  tollgate apikey create --app billing --api orders/v1 --api invoices/v2 --ttl 720h
  tollgate apikey create --app ops --api '*'`,
		Args: noArgs,
	}
	cc := addCommon(create.Flags(), g)
	create.Flags().StringVar(&app, "app", "", "the application the key belongs to")
	create.Flags().StringArrayVar(&apis, "api", nil, `an API the key opens ("name/version", or "*"); repeatable`)
	create.Flags().DurationVar(&ttl, "ttl", 0, "lifetime (0: no expiry)")
	create.RunE = withStore(cc, func(ctx context.Context, st *store.Store, _ []string) error {
		key, rec, err := apikey.Create(ctx, st, app, apis, ttl)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "created key %s for %s (shown once; only its hash is stored)\n", rec.ID, rec.Application)
		fmt.Println(key)
		return nil
	})
	list := &cobra.Command{Use: "list", Short: "List API keys (their ids, applications, APIs, expiry; never a key)",
		Long:    "List the stored API keys: each one's id (the first 8 hex digits of its hash), its\napplication, the APIs it opens and its expiry. Keys themselves are never stored.",
		Example: "  tollgate apikey list", Args: noArgs}
	list.RunE = withStore(addCommon(list.Flags(), g), func(ctx context.Context, st *store.Store, _ []string) error {
		recs, err := apikey.List(ctx, st)
		if err != nil {
			return err
		}
		for _, r := range recs {
			exp := "never"
			if !r.Expires.IsZero() {
				exp = r.Expires.Format(time.RFC3339)
			}
			fmt.Printf("%s  %-20s  apis=%s  expires=%s\n", r.ID, r.Application, strings.Join(r.APIs, ","), exp)
		}
		return nil
	})
	revoke := &cobra.Command{Use: "revoke ID", Short: "Revoke an API key by the id list shows",
		Long:    "Delete the API key whose id (from list or create) is ID; every enforcer refuses it\nwithin milliseconds.",
		Example: "  tollgate apikey revoke 3fa9c2d1", Args: exactArgs(1)}
	revoke.RunE = withStore(addCommon(revoke.Flags(), g), func(ctx context.Context, st *store.Store, args []string) error {
		rev, err := apikey.Revoke(ctx, st, args[0])
		if err != nil {
			return err
		}
		fmt.Printf("revoked key %s at revision %d\n", args[0], rev)
		return nil
	})
	return group("apikey", "API keys: create, list, revoke",
		`API keys for the APIs whose security schemes take one (OpenAPI apiKey, or WSO2's
x-wso2-api-key-header). A key is shown once when created; etcd holds only its hash, the
application, the APIs it opens and its expiry.`,
		"  tollgate apikey create --app billing --api orders/v1\n  tollgate apikey list\n  tollgate apikey revoke 3fa9c2d1",
		create, list, revoke)
}
