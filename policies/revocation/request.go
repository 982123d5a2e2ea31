package revocation

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// Request is a revocation as the CLI, the admin endpoint and key manager notifications
// give it. Exactly one of JTI, Token, Subject and ClientID is set.
type Request struct {
	JTI   string `json:"jti,omitempty"`
	Token string `json:"token,omitempty"` // the token itself: its jti and exp are read from it
	// Subject or ClientID with IssuedBefore revoke every token of that subject or client
	// issued before the time.
	Subject      string    `json:"subject,omitempty"`
	ClientID     string    `json:"clientId,omitempty"`
	IssuedBefore time.Time `json:"issuedBefore,omitzero"`
	// Until is when the revocation may be forgotten: the token's expiry. Required for a jti;
	// read from a JWT; for a subject or client it defaults to IssuedBefore + MaxTokenLifetime.
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// MaxTokenLifetime is how long after IssuedBefore a subject or client revocation is kept
// unless Until says otherwise: no token issued before then outlives it.
const MaxTokenLifetime = 24 * time.Hour

// Resolve turns a request into the key kind, id and record to store.
func (r Request) Resolve() (kind, id string, rec Record, err error) {
	set := 0
	for _, v := range []string{r.JTI, r.Token, r.Subject, r.ClientID} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return "", "", rec, errors.New("give exactly one of jti, token, subject or clientId")
	}
	rec = Record{Until: r.Until, Reason: r.Reason}
	switch {
	case r.JTI != "":
		kind, id = KindJTI, r.JTI
	case r.Token != "":
		kind, id = KindHash, hashOf(r.Token)
		claims := gojwt.MapClaims{}
		// The token is the operator's to revoke: its claims are read, not trusted, and a
		// forged token revoked does no harm.
		if _, _, perr := gojwt.NewParser().ParseUnverified(r.Token, claims); perr == nil {
			if jti, _ := claims["jti"].(string); jti != "" {
				kind, id = KindJTI, jti
			}
			if exp, _ := claims.GetExpirationTime(); exp != nil && rec.Until.IsZero() {
				rec.Until = exp.Time
			}
		}
	case r.Subject != "" || r.ClientID != "":
		kind, id = KindSubject, r.Subject
		if r.ClientID != "" {
			kind, id = KindClient, r.ClientID
		}
		if r.IssuedBefore.IsZero() {
			return "", "", rec, errors.New("a subject or client revocation needs issuedBefore")
		}
		rec.IssuedBefore = r.IssuedBefore
		if rec.Until.IsZero() {
			rec.Until = r.IssuedBefore.Add(MaxTokenLifetime)
		}
	}
	if rec.Until.IsZero() {
		return "", "", rec, errors.New("until (the token's expiry) is required")
	}
	return kind, id, rec, nil
}

func hashOf(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// maxBody bounds a revocation request's body.
const maxBody = 64 << 10

// Handler serves POST requests carrying a Request as JSON, for operators and for key
// manager notifications. A caller must present adminToken as a bearer token.
func Handler(st *store.Store, adminToken []byte) http.Handler {
	want := sha256.Sum256(adminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			http.Error(w, "POST a revocation", http.StatusMethodNotAllowed)
			return
		}
		got := sha256.Sum256([]byte(strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")))
		if len(adminToken) == 0 || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate-admin"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var r Request
		dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				http.Error(w, fmt.Sprintf("a revocation is at most %d bytes", maxBody), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "bad revocation: "+err.Error(), http.StatusBadRequest)
			return
		}
		_ = answer(w, req, st, r)
	})
}

// answer stores a revocation and answers: 200 with its key; 400 for one that can never
// be stored; 503 with Retry-After while etcd cannot take it (a key manager retries a 5xx).
// It returns the error it answered with.
func answer(w http.ResponseWriter, req *http.Request, st *store.Store, r Request) error {
	kind, id, rec, err := r.Resolve()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return err
	}
	key, _, err := Revoke(req.Context(), st, kind, id, rec)
	if _, bad := errors.AsType[*InvalidError](err); bad {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return err
	}
	if err != nil {
		// etcd cannot take a write now (no quorum, unreachable): the caller must retry,
		// so this is not a 4xx.
		w.Header().Set("Retry-After", "5")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"revoked\":%q,\"until\":%q}\n", key, rec.Until.Format(time.RFC3339))
	return nil
}
