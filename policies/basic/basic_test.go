package basic

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/store"
)

func header(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestBcryptArgon2AndEtcdUsers(t *testing.T) {
	b, _ := Hash("password-1")
	// An argon2id string that lacks its hash part.
	const argon = "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
	u, err := New(map[string]string{"ann": b})
	if err != nil {
		t.Fatal(err)
	}
	if name, err := u.Check(header("ann", "password-1")); err != nil || name != "ann" {
		t.Fatalf("bcrypt user: %q %v", name, err)
	}
	if _, err := u.Check(header("ann", "nope")); err != ErrInvalid {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := u.Check("Bearer x"); err != ErrFormat {
		t.Errorf("a Bearer header: %v", err)
	}
	for _, bad := range []string{"Basic !!!", "Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")), header("", "password-1")} {
		if _, err := u.Check(bad); err != ErrMalformed {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Users from etcd; a stored value that is not a hash is ignored, and reported.
	var rejected []string
	u.OnReject(func(key string, err error) { rejected = append(rejected, key) })
	h2, _ := Hash("password-3")
	u.Update(store.Event{KV: store.KV{Key: "bob", Value: []byte(h2)}})
	u.Update(store.Event{KV: store.KV{Key: "eve", Value: []byte("plaintext")}})
	if _, err := u.Check(header("bob", "password-3")); err != nil {
		t.Errorf("etcd user: %v", err)
	}
	if _, err := u.Check(header("eve", "plaintext")); err != ErrInvalid {
		t.Errorf("a plaintext 'hash' must never match: %v", err)
	}
	if len(rejected) != 1 || rejected[0] != "eve" {
		t.Errorf("rejections reported: %v", rejected)
	}
	// A password change invalidates the cache.
	h3, _ := Hash("password-4")
	u.Update(store.Event{KV: store.KV{Key: "bob", Value: []byte(h3)}})
	if _, err := u.Check(header("bob", "password-3")); err != ErrInvalid {
		t.Errorf("the old password still works after a change: %v", err)
	}
	if _, err := New(map[string]string{"x": "plain"}); err == nil {
		t.Error("a config user without a hash was accepted")
	}
	if _, _, _, err := parseArgon2(argon); err == nil {
		t.Error("an argon2id hash without its sum was accepted")
	}
}

func TestArgon2id(t *testing.T) {
	// Made by `tollgate hash --argon2id` from "correct horse".
	const h = "$argon2id$v=19$m=65536,t=3,p=2$xJmbJCJ5YAeltAeABdH9xQ$NTE3pukKziknYjV4yFZlhkw4rsWXe7TvabtHxKYj+Vw"
	u, err := New(map[string]string{"carl": h})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Check(header("carl", "correct horse")); err != nil {
		t.Errorf("argon2id: %v", err)
	}
	if _, err := u.Check(header("carl", "correct horsE")); err != ErrInvalid {
		t.Errorf("argon2id wrong password: %v", err)
	}
}

// bcrypt reads only the first 72 bytes of a password: a longer one is refused when hashed
// and never logs in, or the password plus any suffix would.
func TestBcryptTruncationIsRefused(t *testing.T) {
	long := strings.Repeat("p", 72)
	if _, err := Hash(long + "x"); err != ErrTooLong {
		t.Errorf("hashing 73 bytes: %v", err)
	}
	h, err := Hash(long)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := New(map[string]string{"max": h})
	if _, err := u.Check(header("max", long)); err != nil {
		t.Errorf("the 72-byte password: %v", err)
	}
	for _, suffix := range []string{"x", "anything at all"} {
		if _, err := u.Check(header("max", long+suffix)); err != ErrInvalid {
			t.Errorf("the 72-byte password + %q: %v", suffix, err)
		}
	}
}
