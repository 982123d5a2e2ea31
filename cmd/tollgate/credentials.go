package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

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
func hashCmd(args []string) error {
	fs := flag.NewFlagSet("hash", flag.ContinueOnError)
	useArgon := fs.Bool("argon2id", false, "argon2id instead of bcrypt")
	if err := fs.Parse(args); err != nil {
		return errReported
	}
	h, err := readHash(*useArgon)
	if err != nil {
		return err
	}
	fmt.Println(h)
	return nil
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

// userCmd stores or removes a basic-auth user in etcd (users/<name> holds the hash).
func userCmd(ctx context.Context, args []string) error {
	if len(args) < 2 || (args[0] != "put" && args[0] != "delete") {
		return errors.New("usage: tollgate user put NAME [--argon2id] (password on standard input) | tollgate user delete NAME")
	}
	verb, name := args[0], args[1]
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	var c common
	c.register(fs)
	useArgon := fs.Bool("argon2id", false, "hash with argon2id instead of bcrypt")
	if err := fs.Parse(args[2:]); err != nil {
		return errReported
	}
	if name == "" || strings.ContainsAny(name, ":/ ") {
		return fmt.Errorf("user name %q must not hold ':', '/' or spaces", name)
	}
	_, st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	if verb == "delete" {
		if _, err := st.Delete(ctx, store.Users+name); err != nil {
			return err
		}
		fmt.Printf("deleted user %s\n", name)
		return nil
	}
	h, err := readHash(*useArgon)
	if err != nil {
		return err
	}
	if err := st.Put(ctx, store.Users+name, h); err != nil {
		return err
	}
	fmt.Printf("stored user %s\n", name)
	return nil
}

// apikeyCmd creates, lists and revokes API keys.
func apikeyCmd(ctx context.Context, args []string) error {
	if len(args) < 1 {
		return errors.New("usage: tollgate apikey create --app APP --api NAME/VERSION [--api ...] [--ttl 720h] | list | revoke ID")
	}
	verb, rest := args[0], args[1:]
	fs := flag.NewFlagSet("apikey", flag.ContinueOnError)
	var c common
	c.register(fs)
	app := fs.String("app", "", "the application the key belongs to")
	var apis files
	fs.Var(&apis, "api", `an API the key opens ("name/version", or "*"); repeatable`)
	ttl := fs.Duration("ttl", 0, "lifetime (0: no expiry)")
	id := ""
	if verb == "revoke" && len(rest) > 0 {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return errReported
	}
	_, st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch verb {
	case "create":
		key, rec, err := apikey.Create(ctx, st, *app, apis, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "created key %s for %s (shown once; only its hash is stored)\n", rec.ID, rec.Application)
		fmt.Println(key)
	case "list":
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
	case "revoke":
		if err := apikey.Revoke(ctx, st, id); err != nil {
			return err
		}
		fmt.Printf("revoked key %s\n", id)
	default:
		return fmt.Errorf("unknown apikey command %q", verb)
	}
	return nil
}
