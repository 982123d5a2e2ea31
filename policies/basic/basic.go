// Package basic checks HTTP basic credentials against users whose passwords are stored as
// bcrypt or argon2id hashes (from the config file, or etcd's users/ range). An unknown user
// costs the same hash comparison as a known one, so response times do not tell which users
// exist. A successful check is remembered (by a hash of the credentials, never the password)
// so a repeat request does not pay bcrypt again.
package basic

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// Cost is the bcrypt cost `tollgate hash` uses: about 50 ms on the 2-core development
// machine, paid once per user per cache period thanks to the verified-credential cache.
const Cost = 11

// Hash makes a bcrypt hash of a password of at most 72 bytes (ErrTooLong otherwise).
func Hash(password string) (string, error) {
	if len(password) > maxBcrypt {
		return "", ErrTooLong
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	return string(b), err
}

// Users is the user table with its verified-credential cache. It is the store.Sink of the
// users/ range (key: user name, value: the hash); users from the config are fixed.
type Users struct {
	fixed map[string]string
	users atomic.Pointer[map[string]string]
	ttl   time.Duration
	dummy string

	mu       sync.Mutex
	stored   map[string]string
	cache    sync.Map // [32]byte → time.Time (valid until)
	onReject func(key string, err error)
}

// OnReject sets what happens to a stored user whose value is not a password hash (it is
// ignored either way); call it before following etcd.
func (u *Users) OnReject(f func(key string, err error)) { u.onReject = f }

func (u *Users) accept(name, value string) bool {
	err := checkHash(value)
	if err != nil && u.onReject != nil {
		u.onReject(name, err)
	}
	return err == nil
}

// New makes the table with the users from the config (name → hash).
func New(fixed map[string]string) (*Users, error) {
	for name, h := range fixed {
		if err := checkHash(h); err != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
	}
	dummy, _ := bcrypt.GenerateFromPassword([]byte("tollgate-no-such-user"), Cost)
	u := &Users{fixed: fixed, ttl: 5 * time.Minute, dummy: string(dummy), stored: map[string]string{}}
	u.publish()
	return u, nil
}

func (u *Users) publish() {
	m := make(map[string]string, len(u.fixed)+len(u.stored))
	for k, v := range u.stored {
		m[k] = v
	}
	for k, v := range u.fixed {
		m[k] = v
	}
	u.users.Store(&m)
	u.cache.Clear() // a changed password must not be served from the cache
}

// Reset replaces the users stored in etcd.
func (u *Users) Reset(kvs []store.KV) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stored = map[string]string{}
	for _, kv := range kvs {
		if u.accept(kv.Key, string(kv.Value)) {
			u.stored[kv.Key] = string(kv.Value)
		}
	}
	u.publish()
}

// Update applies one change.
func (u *Users) Update(ev store.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if ev.Deleted {
		delete(u.stored, ev.Key)
	} else if u.accept(ev.Key, string(ev.Value)) {
		u.stored[ev.Key] = string(ev.Value)
	}
	u.publish()
}

// Errors a check returns.
var (
	ErrFormat    = errors.New("not a basic credential")
	ErrMalformed = errors.New("a basic credential that is not base64(user:password) with a user name")
	ErrInvalid   = errors.New("wrong user name or password")
	// ErrTooLong: bcrypt reads only a password's first 72 bytes, so a longer one cannot
	// be checked whole (any suffix would match); store an argon2id hash for it.
	ErrTooLong = errors.New("bcrypt takes passwords of at most 72 bytes")
)

// Check verifies an Authorization header value "Basic base64(user:password)" and returns
// the user name.
func (u *Users) Check(header string) (string, error) {
	if len(header) < 6 || !strings.EqualFold(header[:6], "basic ") {
		return "", ErrFormat
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header[6:]))
	if err != nil {
		return "", ErrMalformed
	}
	name, password, ok := strings.Cut(string(raw), ":")
	if !ok || name == "" {
		return "", ErrMalformed
	}
	key := sha256.Sum256(raw)
	if until, hit := u.cache.Load(key); hit && time.Now().Before(until.(time.Time)) {
		return name, nil
	}
	hash, known := (*u.users.Load())[name]
	if !known {
		verify(u.dummy, password) // the same work as for a known user
		return "", ErrInvalid
	}
	if !verify(hash, password) {
		return "", ErrInvalid
	}
	u.cache.Store(key, time.Now().Add(u.ttl))
	return name, nil
}

func checkHash(h string) error {
	switch {
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		_, err := bcrypt.Cost([]byte(h))
		return err
	case strings.HasPrefix(h, "$argon2id$"):
		_, _, _, err := parseArgon2(h)
		return err
	}
	return errors.New("password hash must be bcrypt ($2b$...) or argon2id ($argon2id$...)")
}

func verify(hash, password string) bool {
	if strings.HasPrefix(hash, "$argon2id$") {
		p, salt, want, err := parseArgon2(hash)
		if err != nil {
			return false
		}
		got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(want)))
		return subtle.ConstantTimeCompare(got, want) == 1
	}
	if len(password) > maxBcrypt {
		// bcrypt would compare the first 72 bytes only: the password plus anything would
		// log in. Still spend the comparison, so timing does not tell.
		_ = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password[:maxBcrypt]))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// maxBcrypt is the longest password bcrypt reads whole.
const maxBcrypt = 72

type argonParams struct {
	memory, time uint32
	threads      uint8
}

// parseArgon2 reads the PHC string $argon2id$v=19$m=65536,t=3,p=2$salt$hash.
func parseArgon2(h string) (argonParams, []byte, []byte, error) {
	parts := strings.Split(h, "$")
	var p argonParams
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" {
		return p, nil, nil, errors.New("argon2id hash: want $argon2id$v=19$m=..,t=..,p=..$salt$hash")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil || p.time == 0 || p.threads == 0 {
		return p, nil, nil, errors.New("argon2id hash: bad parameters")
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	sum, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(sum) < 16 {
		return p, nil, nil, errors.New("argon2id hash: bad salt or hash")
	}
	return p, salt, sum, nil
}
