package revocation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/policies/basic"
)

// wso2Events are the events WSO2 IS's notification handlers post, byte for byte as Gson
// writes them (wso2-extensions/apim-km-wso2is, components/wso2is.notification.event.handlers,
// org.wso2.is.notification.event.*): the event class's own fields first, then Event's
// (eventId, timeStamp, type, tenantId, tenantDomain, properties); null fields left out
// (Gson's default), "=" written \u003d (its HTML-safe default).
func wso2Events(now time.Time) map[string]string {
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	return map[string]string{
		// ApimOauthEventInterceptor.onPostTokenRevocationByClient, a JWT application: the jti.
		"jwt": fmt.Sprintf(`{"accessToken":"8a4c3f6e-6f8b-4f5e-9a51-1f2d3c4b5a69","expiryTime":%d,"user":"alice","consumerKey":"mDpQ7uFV3x_SaLUVfh7kb4fMfW0a","tokenType":"JWT","eventId":"2f0e1c59-4f5c-4f51-9d1b-0d0c1f7b8e11","timeStamp":%d,"type":"token_revocation","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`, ms(time.Hour), ms(0)),
		// onPostTokenRevocationByResourceOwner, an opaque ("Default") token: no tenant set.
		"opaque": fmt.Sprintf(`{"accessToken":"c0ffee00-1234-4abc-8def-0123456789ab\u003d","expiryTime":%d,"user":"bob","consumerKey":"Xy7_opaqueApp","tokenType":"Default","eventId":"6a1f2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b","timeStamp":%d,"type":"token_revocation","tenantId":0,"properties":{}}`, ms(time.Hour), ms(0)),
		// A token that never expires: expiryTime is Long.MAX_VALUE.
		"forever": fmt.Sprintf(`{"accessToken":"f0f0f0f0-aaaa-4bbb-8ccc-dddddddddddd","expiryTime":9223372036854775807,"user":"carol","consumerKey":"forever_app","tokenType":"JWT","eventId":"0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9","timeStamp":%d,"type":"token_revocation","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`, ms(0)),
		// APIMOAuthApplicationMgtListener: every token of an application.
		"app": fmt.Sprintf(`{"consumerKey":"revokedApp_ck","revocationTime":%d,"eventId":"7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f","timeStamp":%d,"type":"consumer_app_revocation_event","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`, ms(0), ms(0)),
		// InMemoryOAuth2RevocationProcessor.revokeTokens: every token of a user (by its id).
		"user": fmt.Sprintf(`{"entityId":"5b2c9d40-8e1f-4a7b-9c3d-2e1f0a9b8c7d","entityType":"USER_ID","revocationTime":%d,"eventId":"1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f","timeStamp":%d,"type":"subject_entity_revocation_event","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`, ms(0), ms(0)),
		// ... and the applications the user owns (their tokens' sub is the consumer key).
		"user-app": fmt.Sprintf(`{"entityId":"ownedApp_ck","entityType":"CLIENT_ID","revocationTime":%d,"eventId":"9f8e7d6c-5b4a-4392-8817-a6b5c4d3e2f1","timeStamp":%d,"type":"subject_entity_revocation_event","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`, ms(0), ms(0)),
		// API-M 4.x's IS connector (before SubjectEntityRevocationEvent).
		"user-4x": fmt.Sprintf(`{"subjectId":"e1d2c3b4-a596-4788-9a0b-c1d2e3f4a5b6","subjectIdType":"USER_ID","revocationTime":%d,"eventId":"aa11bb22-cc33-4d44-8e55-ff6677889900","timeStamp":%d,"type":"internal_token_revocation_user_event","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`, ms(0), ms(0)),
		"app-4x":  fmt.Sprintf(`{"consumerKey":"oldConnectorApp","revocationTime":%d,"eventId":"bb22cc33-dd44-4e55-8f66-007788990011","timeStamp":%d,"type":"internal_token_revocation_consumer_key_event","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`, ms(0), ms(0)),
	}
}

func TestWSO2Notifications(t *testing.T) {
	e := tu.StartEtcd(t)
	st := e.Store("/tollgate/")
	r := follow(t, st)
	hash, err := basic.Hash("is-admin-pw")
	if err != nil {
		t.Fatal(err)
	}
	users, err := basic.New(map[string]string{"admin": hash})
	if err != nil {
		t.Fatal(err)
	}
	srv := tu.NewHTTPServer(t, WSO2Handler(st, WSO2Config{CheckBasic: users.Check, KeyManagers: []string{"WSO2-IS", "WSO2IS"}, Log: zap.NewNop()}))
	post := func(user, pass, km, body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+WSO2NotifyPath, strings.NewReader(body))
		// As EventSender sends it: Basic credentials, the configured headers, JSON.
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		req.Header.Set("X-WSO2-KEY-MANAGER", km)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	before := time.Now().Add(-time.Minute)
	events := wso2Events(time.Now())
	if c := post("", "", "WSO2-IS", events["jwt"]); c != 401 {
		t.Errorf("no credentials: %d", c)
	}
	if c := post("admin", "wrong", "WSO2-IS", events["jwt"]); c != 401 {
		t.Errorf("wrong password: %d", c)
	}
	if c := post("admin", "is-admin-pw", "Okta", events["jwt"]); c != 403 {
		t.Errorf("a key manager not configured: %d", c)
	}
	for name, body := range events {
		if c := post("admin", "is-admin-pw", "WSO2-IS", body); c != 200 {
			t.Errorf("%s: %d", name, c)
		}
	}
	opaque := sha256.Sum256([]byte("c0ffee00-1234-4abc-8def-0123456789ab="))
	for what, tok := range map[string]Token{
		"a JWT by its jti":                   {ID: "8a4c3f6e-6f8b-4f5e-9a51-1f2d3c4b5a69"},
		"an opaque token by its hash":        {Hash: hex.EncodeToString(opaque[:])},
		"a token that never expires":         {ID: "f0f0f0f0-aaaa-4bbb-8ccc-dddddddddddd"},
		"an application's earlier token":     {ClientID: "revokedApp_ck", IssuedAt: before},
		"a user's earlier token":             {Subject: "5b2c9d40-8e1f-4a7b-9c3d-2e1f0a9b8c7d", IssuedAt: before},
		"the user's application's token":     {ClientID: "ownedApp_ck", IssuedAt: before},
		"a user's token (API-M 4.x)":         {Subject: "e1d2c3b4-a596-4788-9a0b-c1d2e3f4a5b6", IssuedAt: before},
		"an application's token (API-M 4.x)": {ClientID: "oldConnectorApp", IssuedAt: before},
	} {
		tu.Eventually(t, what, func() bool { return r.set.Revoked(tok) })
	}
	// Tokens issued after the revocation are not revoked.
	later := time.Now().Add(time.Minute)
	if r.set.Revoked(Token{ClientID: "revokedApp_ck", IssuedAt: later}) || r.set.Revoked(Token{Subject: "5b2c9d40-8e1f-4a7b-9c3d-2e1f0a9b8c7d", IssuedAt: later}) {
		t.Errorf("a token issued after the revocation is revoked")
	}

	// Events that ask for nothing or cannot be taken.
	expired := fmt.Sprintf(`{"accessToken":"old-jti","expiryTime":%d,"user":"alice","consumerKey":"ck","tokenType":"JWT","eventId":"e","timeStamp":1,"type":"token_revocation","tenantId":-1234,"tenantDomain":"carbon.super","properties":{}}`, time.Now().Add(-time.Hour).UnixMilli())
	if c := post("admin", "is-admin-pw", "WSO2IS", expired); c != 200 || r.set.Revoked(Token{ID: "old-jti"}) {
		t.Errorf("an expired token's revocation is answered 200 and stores nothing: %d", c)
	}
	for name, body := range map[string]string{
		"unknown type":         `{"type":"user_notification","eventId":"x"}`,
		"unknown subject type": `{"entityId":"u","entityType":"GROUP_ID","revocationTime":1733300000000,"type":"subject_entity_revocation_event"}`,
		"no token":             `{"expiryTime":9223372036854775807,"type":"token_revocation"}`,
		"not JSON":             `accessToken=x`,
	} {
		if c := post("admin", "is-admin-pw", "WSO2-IS", body); c != 400 {
			t.Errorf("%s: %d, want 400", name, c)
		}
	}
}
