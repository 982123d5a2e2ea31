package revocation

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// WSO2NotifyPath is where WSO2 Identity Server's ApimOauthEventInterceptor posts its events
// (its event_listener's notification_endpoint, on API Manager's /internal/data/v1/notify).
const WSO2NotifyPath = "/internal/data/v1/notify"

// wso2Event is every event class WSO2 IS's notification handlers send, as Gson writes them
// (org.wso2.is.notification.event.*, wso2-extensions/apim-km-wso2is): the fields of
// Event (eventId, timeStamp, type, tenantId, tenantDomain, properties) and of each kind.
type wso2Event struct {
	Type         string `json:"type"`
	EventID      string `json:"eventId"`
	TenantDomain string `json:"tenantDomain"`
	// TokenRevocationEvent ("token_revocation"): accessToken is the token's jti for a JWT
	// application (ApimOauthEventInterceptor.getJWTid), the token itself otherwise;
	// expiryTime is in milliseconds (Long.MAX_VALUE for a token that never expires).
	AccessToken string      `json:"accessToken"`
	ExpiryTime  json.Number `json:"expiryTime"`
	User        string      `json:"user"`
	ConsumerKey string      `json:"consumerKey"`
	TokenType   string      `json:"tokenType"`
	// ConsumerAppRevocationEvent and InternalTokenRevocationConsumerKeyEvent: consumerKey;
	// SubjectEntityRevocationEvent: entityId and entityType; InternalTokenRevocationUserEvent
	// (API-M 4.x): subjectId and subjectIdType. All: revocationTime in milliseconds.
	RevocationTime json.Number `json:"revocationTime"`
	EntityID       string      `json:"entityId"`
	EntityType     string      `json:"entityType"`
	SubjectID      string      `json:"subjectId"`
	SubjectIDType  string      `json:"subjectIdType"`
}

// The event types (NotificationConstants) and subject id types (PersistenceConstants).
const (
	wso2TokenRevocation       = "token_revocation"
	wso2ConsumerApp           = "consumer_app_revocation_event"
	wso2SubjectEntity         = "subject_entity_revocation_event"
	wso2InternalUser          = "internal_token_revocation_user_event"
	wso2InternalConsumerKey   = "internal_token_revocation_consumer_key_event"
	wso2UserID, wso2ClientID  = "USER_ID", "CLIENT_ID"
	maxNeverExpiringRetention = 10 * 365 * 24 * time.Hour
)

// request turns an event into the revocation it asks for; ignore reports an event that
// asks for nothing (a token that has expired already).
func (ev wso2Event) request(now time.Time) (r Request, ignore string, err error) {
	r.Reason = "WSO2 " + ev.Type + " " + ev.EventID
	switch ev.Type {
	case wso2TokenRevocation:
		if ev.AccessToken == "" {
			return r, "", errors.New("token_revocation without accessToken")
		}
		exp, err := millis(ev.ExpiryTime, "expiryTime")
		if err != nil {
			return r, "", err
		}
		if !exp.After(now) {
			return r, "the token has expired", nil
		}
		r.Until = exp
		if now.Add(maxNeverExpiringRetention).Before(exp) {
			r.Until = now.Add(maxNeverExpiringRetention) // Long.MAX_VALUE: never expires
		}
		if strings.EqualFold(ev.TokenType, "JWT") && strings.Count(ev.AccessToken, ".") != 2 {
			r.JTI = ev.AccessToken
		} else {
			r.Token = ev.AccessToken // an opaque token (by its hash), or a whole JWT (its jti)
		}
		return r, "", nil
	case wso2ConsumerApp, wso2InternalConsumerKey:
		r.ClientID = ev.ConsumerKey
	case wso2SubjectEntity, wso2InternalUser:
		id, kind := ev.EntityID, ev.EntityType
		if ev.Type == wso2InternalUser {
			id, kind = ev.SubjectID, ev.SubjectIDType
		}
		switch kind {
		case wso2UserID:
			r.Subject = id
		case wso2ClientID:
			r.ClientID = id
		default:
			return r, "", fmt.Errorf("%s: unknown subject type %q (want %s or %s)", ev.Type, kind, wso2UserID, wso2ClientID)
		}
	default:
		return r, "", fmt.Errorf("unknown event type %q", ev.Type)
	}
	if r.Subject == "" && r.ClientID == "" {
		return r, "", fmt.Errorf("%s names no user or application", ev.Type)
	}
	r.IssuedBefore, err = millis(ev.RevocationTime, "revocationTime")
	return r, "", err
}

func millis(n json.Number, field string) (time.Time, error) {
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || v <= 0 {
		return time.Time{}, fmt.Errorf("%s %q is not a time in milliseconds", field, n)
	}
	if v > (1<<63-1)/int64(time.Millisecond) {
		return time.Unix(1<<40, 0), nil // beyond time.Duration: treated as never
	}
	return time.UnixMilli(v), nil
}

// WSO2Config is who may post WSO2 IS's events.
type WSO2Config struct {
	// CheckBasic verifies the Authorization header's basic credentials (the configured
	// user's hash), returning the user name.
	CheckBasic func(header string) (string, error)
	// KeyManagers, if set, are the X-WSO2-KEY-MANAGER values accepted.
	KeyManagers []string
	Log         *zap.Logger
}

// WSO2Handler takes WSO2 Identity Server's revocation events unchanged: POSTed as JSON
// with basic authentication and the X-WSO2-KEY-MANAGER header, each turned into a
// revocation stored as /revoke stores one. An event it cannot take is 400 (IS does not
// retry); etcd away is 503 with Retry-After.
func WSO2Handler(st *store.Store, cfg WSO2Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			http.Error(w, "POST an event", http.StatusMethodNotAllowed)
			return
		}
		if _, err := cfg.CheckBasic(req.Header.Get("Authorization")); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="tollgate-notify"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		km := req.Header.Get("X-WSO2-KEY-MANAGER")
		if len(cfg.KeyManagers) > 0 && !slices.Contains(cfg.KeyManagers, km) {
			http.Error(w, fmt.Sprintf("key manager %q is not one this gateway takes events from", km), http.StatusForbidden)
			return
		}
		var ev wso2Event
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody)).Decode(&ev); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				http.Error(w, fmt.Sprintf("an event is at most %d bytes", maxBody), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "bad event: "+err.Error(), http.StatusBadRequest)
			return
		}
		log := cfg.Log.With(zap.String("type", ev.Type), zap.String("eventId", ev.EventID), zap.String("keyManager", km), zap.String("tenant", ev.TenantDomain))
		r, ignore, err := ev.request(time.Now())
		switch {
		case err != nil:
			log.Warn("WSO2 revocation event refused", zap.Error(err))
			http.Error(w, err.Error(), http.StatusBadRequest)
		case ignore != "":
			log.Info("WSO2 revocation event ignored", zap.String("why", ignore))
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, "{\"ignored\":%q}\n", ignore)
		default:
			if err := answer(w, req, st, r); err != nil {
				log.Warn("WSO2 revocation event not stored", zap.Error(err))
				return
			}
			log.Info("WSO2 revocation event taken")
		}
	})
}
