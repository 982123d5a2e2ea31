package extauthz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Fault is a deny: a WSO2-compatible code with its HTTP status and texts.
type Fault struct {
	Code        int
	Status      int
	Message     string
	Description string
	// WSO2Body, when set, is the body in the wso2 format as MGW 3.x writes it for this
	// event (its 405 is not in the fault wrapper).
	WSO2Body string
}

// The faults the enforcer answers with (see README "Fault codes"). Descriptions follow the
// WSO2 gateways' wording so that clients written for them keep working.
var (
	FaultInvalid = Fault{900901, 401, "Invalid Credentials", "Invalid Credentials. Make sure you have provided the correct security credentials", ""}
	FaultRevoked = Fault{900901, 401, "Invalid Credentials", "Token revoked", ""}
	FaultMissing = Fault{900902, 401, "Missing Credentials", "Missing Credentials. Make sure your API invocation call has a header: 'Authorization: Bearer ACCESS_TOKEN'", ""}
	// The same event for the other credential kinds, in their words.
	FaultMissingBasic       = Fault{900902, 401, "Missing Credentials", "Missing Credentials. Make sure your API invocation call has a header: 'Authorization: Basic BASE64(username:password)'", ""}
	FaultMissingAPIKey      = Fault{900902, 401, "Missing Credentials", "Missing Credentials. Make sure your API invocation call carries the API key where the API expects it", ""}
	FaultMissingCertificate = Fault{900902, 401, "Missing Credentials", "Missing Credentials. Make sure the connection presents a client certificate", ""}
	// FaultCertificateRequired is WSO2 API Manager's answer when an API's mutual TLS is
	// mandatory and the connection presents no certificate: its MutualSSLAuthenticator
	// refuses with API_AUTH_INVALID_CREDENTIALS (900901), whatever else the operation
	// asks. Definitions written for WSO2 (x-wso2-*) get it; others get FaultMissingCertificate.
	FaultCertificateRequired = Fault{900901, 401, "Invalid Credentials", "Invalid Credentials. Make sure the connection presents a trusted client certificate", ""}
	FaultBasicInvalid        = Fault{900911, 401, "Invalid basic auth credentials", "Invalid basic auth credentials. Make sure you have provided the correct user name and password", ""}
	FaultInactive            = Fault{900904, 401, "Access Token Inactive", "Access Token Inactive. Generate a new access token and try again", ""}
	FaultExpired             = Fault{900903, 401, "Access Token Expired", "Access Token Expired. Renew the access token and try again", ""}
	// FaultNoAPI: no API serves the request's path (WSO2 API Manager's words).
	FaultNoAPI = Fault{900906, 404, "No matching resource found in the API for the given request", "No matching resource found in the API for the given request. Check the API documentation and add a proper REST resource path to the invocation URL", ""}
	// FaultNoResource: the API has no operation for the path; MGW 3.x's own body.
	FaultNoResource = Fault{900906, 404, "Runtime Error", "No matching resource found for given API Request",
		`{"code":404, "type":"Status report", "message":"Runtime Error", "description":"No matching resource found for given API Request"}`}
	FaultScope                 = Fault{900910, 403, "The access token does not allow you to access the requested resource", "The access token does not allow you to access the requested resource", ""}
	FaultMalformed             = Fault{900918, 401, "Malformed token", "Malformed token. Make sure you have provided a well-formed access token", ""}
	FaultUnsupported           = Fault{900917, 401, "Invalid authentication scheme", "Invalid authentication scheme. The credentials given are not of a scheme this resource accepts", ""}
	FaultThrottledAPI          = Fault{900800, 429, "Message throttled out", "You have exceeded your quota", ""}
	FaultThrottledResource     = Fault{900802, 429, "Message throttled out", "You have exceeded your quota", ""}
	FaultThrottledApplication  = Fault{900803, 429, "Message throttled out", "You have exceeded your quota", ""}
	FaultThrottledSubscription = Fault{900804, 429, "Message throttled out", "You have exceeded your quota", ""}
	FaultThrottledCustom       = Fault{900806, 429, "Message throttled out", "You have exceeded your quota", ""}
	FaultPolicyNotFound        = Fault{900809, 500, "Internal server error occured", "POLICY ENFORCEMENT ERROR", ""} // MGW 3.x's words
	FaultInternal              = Fault{900900, 500, "Unclassified Authentication Failure", "Unclassified Authentication Failure", ""}
	// FaultBadBytes and FaultTwoCredentials are 400s in MGW's request-validation shape: a
	// path, header or credential with bytes that are not UTF-8; more than one credential
	// (RFC 6750 §2: one method, one credential).
	FaultBadBytes       = Fault{400, 400, "Bad Request", "The request's path, a header or the credential holds bytes that are not UTF-8", ""}
	FaultTwoCredentials = Fault{400, 400, "Bad Request", "More than one credential: send one Authorization header with one credential", ""}
	// FaultMethodNotAllowed: a known path with another method (Allow lists the methods).
	FaultMethodNotAllowed = Fault{405, 405, "Runtime Error", "Method not allowed for given API resource",
		`{"code":405, "type":"Status report", "message":"Runtime Error", "description":"Method not allowed for given API resource"}`}
	// FaultNotReady is Tollgate's own: the enforcer has not loaded its state (etcd
	// unreachable since it started, and no local copy). Clients may retry.
	FaultNotReady = Fault{900950, 503, "Gateway not ready", "The gateway has not loaded its configuration yet. Try again later", ""}
	// FaultThrottlingUnavailable: a throttling policy applies and its counter cannot be read
	// (Redis away, throttling.redis.fallback: deny). It is not the caller's quota, so not a
	// 429: a 503 with Retry-After.
	FaultThrottlingUnavailable = Fault{900951, 503, "Service Unavailable", "Throttling cannot be decided now: its counters are unreachable. Try again later", ""}
)

// Format is how deny bodies are written.
type Format string

// The body formats.
const (
	FormatWSO2    Format = "wso2"    // {"fault":{"code":.., "message":.., "description":..}}
	FormatProblem Format = "problem" // RFC 9457 application/problem+json
)

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   int    `json:"code"`
}

func problemFor(f Fault) problemBody {
	return problemBody{
		Type: "https://tollgate.dev/faults/" + strconv.Itoa(f.Code), Title: f.Message,
		Status: f.Status, Detail: f.Description, Code: f.Code,
	}
}

// body renders a fault in the format, returning the body and its content type.
func (f Fault) body(format Format) ([]byte, string) {
	if format == FormatProblem {
		b, _ := json.Marshal(problemFor(f))
		return b, "application/problem+json"
	}
	if f.WSO2Body != "" {
		return []byte(f.WSO2Body), "application/json"
	}
	// MGW 3.x's bytes: a space after each comma, none after a colon, nothing escaped
	// that JSON does not require.
	b := []byte(`{"fault":{"code":`)
	b = strconv.AppendInt(b, int64(f.Code), 10)
	b = append(b, `, "message":`...)
	b = appendJSONString(b, f.Message)
	b = append(b, `, "description":`...)
	b = appendJSONString(b, f.Description)
	return append(b, "}}"...), "application/json"
}

// appendJSONString appends s as a JSON string, with HTML characters left as they are.
func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

func (f Fault) String() string { return fmt.Sprintf("%d %s", f.Code, f.Message) }
