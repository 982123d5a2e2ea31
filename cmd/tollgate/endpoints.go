package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/xds/build"
)

// endpointsCmd sets, shows or removes the addresses behind a service discovery key — what a
// service's deploy tooling does when the service moves.
func endpointsCmd(ctx context.Context, args []string) error {
	usage := errors.New("usage: tollgate endpoints set KEY URL [URL...] | get KEY | delete KEY (flags anywhere)")
	if len(args) < 1 || (args[0] != "set" && args[0] != "get" && args[0] != "delete") {
		return usage
	}
	verb := args[0]
	fs := flag.NewFlagSet("endpoints", flag.ContinueOnError)
	var c common
	c.register(fs)
	positional, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return errReported
	}
	if len(positional) == 0 {
		return usage
	}
	key, urls := positional[0], positional[1:]
	if verb != "set" && len(urls) > 0 {
		return usage
	}
	_, st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	full := st.Prefix() + store.Endpoints + key
	switch verb {
	case "set":
		if len(urls) == 0 {
			return errors.New("give at least one URL")
		}
		value, _ := json.Marshal(urls)
		if _, err := build.ParseDiscovery(string(value)); err != nil {
			return err
		}
		if err := st.Put(ctx, store.Endpoints+key, string(value)); err != nil {
			return err
		}
		fmt.Printf("%s = %s\n", full, value)
	case "get":
		v, ok, err := st.Get(ctx, store.Endpoints+key)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s is not set: the definition's default URL serves", full)
		}
		fmt.Println(string(v))
	case "delete":
		if _, err := st.Delete(ctx, store.Endpoints+key); err != nil {
			return err
		}
		fmt.Printf("deleted %s: the default URL serves\n", full)
	}
	return nil
}

// parseInterleaved parses flags that may come before, between or after positional arguments,
// and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
