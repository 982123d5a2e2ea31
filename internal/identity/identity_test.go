package identity

import (
	"errors"
	"fmt"
	"testing"
)

func TestKinds(t *testing.T) {
	for k, want := range map[Kind]string{None: "none", MutualTLS: "mtls", Basic: "basic", APIKey: "apikey", Opaque: "opaque", JWT: "jwt", Kind(99): "unknown"} {
		if k.String() != want {
			t.Errorf("%d is %q, want %q", k, k.String(), want)
		}
	}
	// A token's over a key's over a password's over a certificate's; JWT and opaque alike.
	order := []Kind{MutualTLS, Basic, APIKey, JWT}
	for i := 1; i < len(order); i++ {
		if !order[i].Outranks(order[i-1]) || order[i-1].Outranks(order[i]) {
			t.Errorf("%v should outrank %v", order[i], order[i-1])
		}
	}
	if JWT.Outranks(Opaque) || Opaque.Outranks(JWT) {
		t.Error("a JWT and an opaque token rank alike")
	}
}

func TestFailureOf(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", Refuse(Expired, "the token expired"))
	if FailureOf(err) != Expired || err.Error() != "wrapped: the token expired" {
		t.Errorf("%v %v", FailureOf(err), err)
	}
	if FailureOf(errors.New("other")) != Invalid {
		t.Error("an error of no kind is Invalid")
	}
}
