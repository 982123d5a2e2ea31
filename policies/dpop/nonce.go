package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"
)

// Nonces are server-provided DPoP nonces (RFC 9449 §8, §9): a proof must carry one the
// gateway gave out recently, which bounds how long a proof made ahead of time (by a client
// whose clock or key was taken over) can be used. They are stateless — the issue time and
// an HMAC of it under the gateway's key — so every enforcer that shares the key accepts
// every other's, and none remembers what it gave out.
type Nonces struct {
	key      []byte
	lifetime time.Duration
	now      func() time.Time
	current  atomic.Pointer[nonce]
}

type nonce struct {
	value  string
	issued time.Time
}

// nonceBytes is 8 bytes of issue time (unix seconds) and 16 of HMAC-SHA256: 32 base64url
// characters, within the NQCHAR set RFC 9449 §8.1 allows.
const nonceBytes = 8 + 16

// NewNonces makes nonces valid for lifetime under key; a nil key is a random one of this
// process (then replicas do not accept each other's nonces).
func NewNonces(key []byte, lifetime time.Duration) (*Nonces, error) {
	if key == nil {
		key = make([]byte, 32)
		rand.Read(key)
	}
	if len(key) < 32 {
		return nil, errors.New("the DPoP nonce key must be at least 32 bytes")
	}
	if lifetime < 10*time.Second {
		return nil, errors.New("a DPoP nonce lifetime under 10s leaves a client no time to use it")
	}
	return &Nonces{key: key, lifetime: lifetime, now: time.Now}, nil
}

// Current is the nonce to give a client: a new one every quarter of the lifetime, so a
// client that just got one has at least three quarters of it left.
func (n *Nonces) Current() string {
	now := n.now()
	if c := n.current.Load(); c != nil && now.Sub(c.issued) < n.lifetime/4 {
		return c.value
	}
	c := &nonce{value: n.make(now), issued: now}
	n.current.Store(c)
	return c.value
}

func (n *Nonces) make(t time.Time) string {
	var b [nonceBytes]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.Unix()))
	mac := hmac.New(sha256.New, n.key)
	mac.Write(b[:8])
	copy(b[8:], mac.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// check says whether a proof's nonce is one of ours and still good, and whether the client
// should be given a newer one (it is past half its life).
func (n *Nonces) check(v string) (renew bool, err error) {
	var b [nonceBytes]byte
	if len(v) != base64.RawURLEncoding.EncodedLen(nonceBytes) {
		return false, errors.New("not a nonce this gateway gave out")
	}
	if _, err := base64.RawURLEncoding.Decode(b[:], []byte(v)); err != nil {
		return false, errors.New("not a nonce this gateway gave out")
	}
	mac := hmac.New(sha256.New, n.key)
	mac.Write(b[:8])
	if !hmac.Equal(mac.Sum(nil)[:16], b[8:]) {
		return false, errors.New("not a nonce this gateway gave out")
	}
	age := n.now().Sub(time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0))
	if age > n.lifetime || age < -5*time.Second {
		return false, errors.New("the nonce has expired")
	}
	return age > n.lifetime/2, nil
}
