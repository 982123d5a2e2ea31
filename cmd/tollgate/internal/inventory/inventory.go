// Package inventory is what is stored in etcd, read for people: the APIs, throttling
// policies, discovery endpoints, revocations, API keys and users as rows, an API described
// as Envoy will get it, and deletes that refuse to leave a dangling reference. It backs the
// CLI's get, describe and delete; it never shows a secret (a key, a hash, a password).
package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/apikey"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
	"github.com/tollgate-gw/tollgate/policies/revocation"
)

// Inventory reads and deletes what a store holds.
type Inventory struct{ st *store.Store }

// New is the inventory of st.
func New(st *store.Store) Inventory { return Inventory{st} }

// API is one stored definition.
type API struct {
	ID         string `json:"id"` // name/version
	BasePath   string `json:"basePath,omitempty"`
	Operations int    `json:"operations"`
	Throttling string `json:"throttling,omitempty"`
	// Problem is why the stored document does not parse (the gateway leaves it out).
	Problem string `json:"problem,omitempty"`
	// Document is the definition as it was applied.
	Document []byte `json:"-"`
	model    *apimodel.API
}

// APIs are the stored definitions, by id.
func (i Inventory) APIs(ctx context.Context) ([]API, error) {
	kvs, err := i.st.List(ctx, store.APIs)
	if err != nil {
		return nil, err
	}
	out := make([]API, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, parseAPI(strings.TrimPrefix(kv.Key, store.APIs), kv.Value))
	}
	return out, nil
}

// API is one stored definition; ok is false when there is none.
func (i Inventory) API(ctx context.Context, id string) (API, bool, error) {
	if err := checkID(id); err != nil {
		return API{}, false, err
	}
	v, ok, err := i.st.Get(ctx, store.APIs+id)
	if err != nil || !ok {
		return API{}, ok, err
	}
	return parseAPI(id, v), true, nil
}

func checkID(id string) error {
	name, version, ok := strings.Cut(id, "/")
	if !ok || name == "" || version == "" || strings.Contains(version, "/") {
		return fmt.Errorf("API %q: want NAME/VERSION", id)
	}
	return nil
}

func parseAPI(id string, doc []byte) API {
	a := API{ID: id, Document: doc}
	res, err := openapi.Parse(id, doc)
	if err != nil {
		a.Problem = err.Error()
		return a
	}
	a.model = res.API
	a.BasePath, a.Operations, a.Throttling = res.API.BasePath, len(res.API.Operations), res.API.Throttling
	return a
}

// Policy is one stored throttling policy.
type Policy struct {
	Name    string   `json:"name"`
	Limit   string   `json:"limit"` // "100/1m0s burst 10", or "unlimited"
	Key     string   `json:"key,omitempty"`
	Shadow  bool     `json:"shadow,omitempty"`
	Problem string   `json:"problem,omitempty"`
	UsedBy  []string `json:"usedBy,omitempty"` // the APIs and operations that name it
}

// Policies are the stored throttling policies, each with what uses it.
func (i Inventory) Policies(ctx context.Context) ([]Policy, error) {
	kvs, err := i.st.List(ctx, store.Policies)
	if err != nil {
		return nil, err
	}
	apis, err := i.APIs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Policy, 0, len(kvs))
	for _, kv := range kvs {
		name := strings.TrimPrefix(kv.Key, store.Policies)
		p := Policy{Name: name, UsedBy: policyUsers(apis, name)}
		rp, err := ratelimit.ParsePolicy(kv.Value)
		switch {
		case err != nil:
			p.Problem = err.Error()
		case rp.Unlimited:
			p.Limit = "unlimited"
		default:
			p.Limit = fmt.Sprintf("%d/%v", rp.Limit.Count, rp.Limit.Period)
			if rp.Limit.Burst > 0 {
				p.Limit += fmt.Sprintf(" burst %d", rp.Limit.Burst)
			}
		}
		p.Key, p.Shadow = rp.Key, rp.Shadow
		out = append(out, p)
	}
	return out, nil
}

// policyUsers are the APIs and operations whose throttling names the policy.
func policyUsers(apis []API, name string) []string {
	var out []string
	for _, a := range apis {
		if a.model == nil {
			continue
		}
		if a.model.Throttling == name {
			out = append(out, a.ID)
		}
		for _, op := range a.model.Operations {
			if op.Throttling == name {
				out = append(out, a.ID+" "+op.Key())
			}
		}
	}
	return out
}

// Endpoint is one discovery key and its URLs.
type Endpoint struct {
	Key  string   `json:"key"`
	URLs []string `json:"urls"`
}

// Endpoints are the stored discovery keys.
func (i Inventory) Endpoints(ctx context.Context) ([]Endpoint, error) {
	kvs, err := i.st.List(ctx, store.Endpoints)
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, 0, len(kvs))
	for _, kv := range kvs {
		e := Endpoint{Key: strings.TrimPrefix(kv.Key, store.Endpoints)}
		if json.Unmarshal(kv.Value, &e.URLs) != nil {
			e.URLs = []string{string(kv.Value)}
		}
		out = append(out, e)
	}
	return out, nil
}

// Revocation is one stored revocation.
type Revocation struct {
	Kind         string    `json:"kind"` // jti, token (an opaque token's hash), subject, client
	ID           string    `json:"id"`
	Until        time.Time `json:"until"`
	IssuedBefore time.Time `json:"issuedBefore,omitzero"`
	Reason       string    `json:"reason,omitempty"`
}

// Ref is how delete names it: KIND/ID.
func (r Revocation) Ref() string { return r.Kind + "/" + url.PathEscape(r.ID) }

// Revocations are the stored revocations.
func (i Inventory) Revocations(ctx context.Context) ([]Revocation, error) {
	kvs, err := i.st.List(ctx, store.Revoked)
	if err != nil {
		return nil, err
	}
	out := make([]Revocation, 0, len(kvs))
	for _, kv := range kvs {
		kind, esc, _ := strings.Cut(strings.TrimPrefix(kv.Key, store.Revoked), "/")
		id, err := url.PathUnescape(esc)
		if err != nil {
			id = esc
		}
		r := Revocation{Kind: kind, ID: id}
		var rec revocation.Record
		if json.Unmarshal(kv.Value, &rec) == nil {
			r.Until, r.IssuedBefore, r.Reason = rec.Until, rec.IssuedBefore, rec.Reason
		}
		out = append(out, r)
	}
	return out, nil
}

// APIKeys are the stored API keys' records (never a key).
func (i Inventory) APIKeys(ctx context.Context) ([]apikey.Record, error) {
	return apikey.List(ctx, i.st)
}

// User is one stored basic-auth user: its name and how its password is hashed.
type User struct {
	Name string `json:"name"`
	Hash string `json:"hash"` // bcrypt, argon2id, or unknown
}

// Users are the stored basic-auth users.
func (i Inventory) Users(ctx context.Context) ([]User, error) {
	kvs, err := i.st.List(ctx, store.Users)
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(kvs))
	for _, kv := range kvs {
		h := string(kv.Value)
		kind := "unknown"
		switch {
		case strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"):
			kind = "bcrypt"
		case strings.HasPrefix(h, "$argon2id$"):
			kind = "argon2id"
		}
		out = append(out, User{Name: strings.TrimPrefix(kv.Key, store.Users), Hash: kind})
	}
	return out, nil
}

// ReferencedError is a delete refused because something still names what would go.
type ReferencedError struct {
	What string
	By   []string
}

func (e *ReferencedError) Error() string {
	return fmt.Sprintf("%s is still referenced by %s (--force deletes it anyway)", e.What, strings.Join(e.By, ", "))
}

// NotFoundError is a delete of something that is not stored.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What + " is not stored" }

// DeleteAPI removes a definition unless an API key still opens it (or force), and returns
// the etcd revision of the delete.
func (i Inventory) DeleteAPI(ctx context.Context, id string, force bool) (int64, error) {
	if _, ok, err := i.API(ctx, id); err != nil || !ok {
		if err == nil {
			err = &NotFoundError{"API " + id}
		}
		return 0, err
	}
	if !force {
		keys, err := i.APIKeys(ctx)
		if err != nil {
			return 0, err
		}
		var by []string
		for _, k := range keys {
			for _, a := range k.APIs {
				if a == id {
					by = append(by, fmt.Sprintf("API key %s (%s)", k.ID, k.Application))
				}
			}
		}
		if len(by) > 0 {
			return 0, &ReferencedError{"API " + id, by}
		}
	}
	return i.delete(ctx, store.APIs+id, "API "+id)
}

// DeletePolicy removes a throttling policy unless an API or operation still names it (or
// force).
func (i Inventory) DeletePolicy(ctx context.Context, name string, force bool) (int64, error) {
	if !force {
		apis, err := i.APIs(ctx)
		if err != nil {
			return 0, err
		}
		if by := policyUsers(apis, name); len(by) > 0 {
			return 0, &ReferencedError{"throttling policy " + name, by}
		}
	}
	return i.delete(ctx, store.Policies+name, "throttling policy "+name)
}

// DeleteRevocation removes a revocation named KIND/ID (as Revocation.Ref gives it): the
// token or tokens are accepted again.
func (i Inventory) DeleteRevocation(ctx context.Context, ref string) (int64, error) {
	kind, id, ok := strings.Cut(ref, "/")
	if !ok || kind == "" || id == "" {
		return 0, fmt.Errorf("revocation %q: want KIND/ID as get revocations shows it", ref)
	}
	return i.delete(ctx, store.Revoked+kind+"/"+id, "revocation "+ref)
}

// DeleteUser removes a basic-auth user.
func (i Inventory) DeleteUser(ctx context.Context, name string) (int64, error) {
	return i.delete(ctx, store.Users+name, "user "+name)
}

func (i Inventory) delete(ctx context.Context, rel, what string) (int64, error) {
	n, rev, err := i.st.Delete(ctx, rel)
	if err == nil && n == 0 {
		err = &NotFoundError{what}
	}
	return rev, err
}

func jsonList(urls []string) (string, error) {
	b, err := json.Marshal(urls)
	return string(b), err
}
