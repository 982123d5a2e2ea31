package test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Issue 23, item 7, over the binary: WSO2 Identity Server's revocation notifier
// (ApimOauthEventInterceptor, configured with notification_endpoint =
// <gateway>/internal/data/v1/notify, a username and password, and the X-WSO2-KEY-MANAGER
// header) posts its events unchanged, and the tokens they name are refused at once: one
// token by its jti, every token of a user, every token of an application.
func TestWSO2IdentityServerRevocationEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPorts(t)
	h := stdin(t, "is-admin-pw\n", "hash")
	if h.code != 0 {
		t.Fatalf("hash: %s", h.stderr)
	}
	cfg := serverConfig(t, dir, "run.yaml", p, "", `, wso2Notify: {users: {admin: "`+strings.TrimSpace(h.stdout)+`"}, keyManagers: [WSO2-IS]}`)
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", "../examples/coffeebar/coffeebar.yaml")
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")

	token := func(args ...string) string {
		o := tollgate(t, append([]string{"token", "--config", cfg, "--scope", "read:menu"}, args...)...)
		if o.code != 0 {
			t.Fatalf("token: %s", o.stderr)
		}
		return strings.TrimSpace(o.stdout)
	}
	allowed := func(tok string) bool {
		o := tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/menu", "-H", "Authorization: Bearer "+tok)
		return strings.Contains(o.stdout, "ALLOWED 200")
	}
	one, user, app, other := token(), token("--sub", "5b2c9d40-8e1f-4a7b-9c3d-2e1f0a9b8c7d"), token("--client-id", "mDpQ7uFV3x_SaLUVfh7kb4fMfW0a"), token()
	for _, tok := range []string{one, user, app, other} {
		if !allowed(tok) {
			t.Fatalf("a fresh token is refused before any event")
		}
	}
	var claims struct{ JTI string }
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(one, ".")[1])
	if err := json.Unmarshal(payload, &claims); err != nil || claims.JTI == "" {
		t.Fatalf("token claims: %v %s", err, payload)
	}
	// Tokens are issued with iat in whole seconds: the revocations come a second later.
	time.Sleep(1100 * time.Millisecond)
	now := time.Now()
	post := func(user, pass, km, body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.admin+"/internal/data/v1/notify", strings.NewReader(body))
		req.SetBasicAuth(user, pass)
		req.Header.Set("X-WSO2-KEY-MANAGER", km)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// As Gson writes TokenRevocationEvent, SubjectEntityRevocationEvent and
	// ConsumerAppRevocationEvent (the class's fields, then Event's).
	events := []string{
		fmt.Sprintf(`{"accessToken":"%s","expiryTime":%d,"user":"dev-user","consumerKey":"dev-app","tokenType":"JWT","eventId":"2f0e1c59-4f5c-4f51-9d1b-0d0c1f7b8e11","timeStamp":%d,"type":"token_revocation","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`,
			claims.JTI, now.Add(time.Hour).UnixMilli(), now.UnixMilli()),
		fmt.Sprintf(`{"entityId":"5b2c9d40-8e1f-4a7b-9c3d-2e1f0a9b8c7d","entityType":"USER_ID","revocationTime":%d,"eventId":"1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f","timeStamp":%d,"type":"subject_entity_revocation_event","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`,
			now.UnixMilli(), now.UnixMilli()),
		fmt.Sprintf(`{"consumerKey":"mDpQ7uFV3x_SaLUVfh7kb4fMfW0a","revocationTime":%d,"eventId":"7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f","timeStamp":%d,"type":"consumer_app_revocation_event","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`,
			now.UnixMilli(), now.UnixMilli()),
	}
	if c := post("admin", "wrong", "WSO2-IS", events[0]); c != 401 {
		t.Errorf("a wrong password: %d", c)
	}
	if c := post("admin", "is-admin-pw", "Keycloak", events[0]); c != 403 {
		t.Errorf("another key manager: %d", c)
	}
	if !allowed(one) {
		t.Fatalf("refused events revoked a token")
	}
	for i, ev := range events {
		if c := post("admin", "is-admin-pw", "WSO2-IS", ev); c != 200 {
			t.Fatalf("event %d: %d", i, c)
		}
	}
	for name, tok := range map[string]string{"the token": one, "the user's token": user, "the application's token": app} {
		if allowed(tok) {
			t.Errorf("%s is still allowed after its revocation event", name)
		}
	}
	if !allowed(other) {
		t.Errorf("a token no event named is refused")
	}
	// After the events, the same user and application get new tokens that pass (iat is
	// in whole seconds: from the second after the revocation).
	time.Sleep(time.Until(now.Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
	if !allowed(token("--sub", "5b2c9d40-8e1f-4a7b-9c3d-2e1f0a9b8c7d")) || !allowed(token("--client-id", "mDpQ7uFV3x_SaLUVfh7kb4fMfW0a")) {
		t.Errorf("a token issued after the user's (application's) revocation is refused")
	}
}
