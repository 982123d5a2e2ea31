package extauthz

import (
	"strings"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

// throttle asks the throttling policies that apply to the request (the API's, the
// operation's, the application's and the subscription's from the token).
func (e *Enforcer) throttle(d *decision) bool {
	if e.cfg.Throttle == nil {
		return true
	}
	r := ratelimit.Request{API: d.api.ID(), Operation: d.op.Key(), APIPolicy: d.api.Throttling, OpPolicy: d.op.Throttling,
		IP: d.attrs.GetSource().GetAddress().GetSocketAddress().GetAddress()}
	if id := d.principal; id != nil {
		r.ClientID, r.Subject, r.Claims = id.ClientID, id.Subject, id.Claims
		r.AppPolicy, _ = id.Claims[e.cfg.ApplicationTierClaim].(string)
		r.SubPolicy, _ = id.Claims[e.cfg.SubscriptionTierClaim].(string)
		if r.AppPolicy == "" {
			r.AppPolicy = wso2ApplicationTier(id.Claims)
		}
		if r.SubPolicy == "" {
			r.SubPolicy = wso2SubscriptionTier(id.Claims, d.api)
		}
	}
	if r.APIPolicy == "" && r.OpPolicy == "" && r.AppPolicy == "" && r.SubPolicy == "" {
		return true // no policy applies: nothing to count
	}
	r.Headers = headerMap(d.h) // for policies counted by a header
	l := e.cfg.Throttle.Decide(d.ctx, r)
	d.limit = l
	switch {
	case l.Allowed:
		return true
	case l.NotFound:
		d.deny(&FaultPolicyNotFound, "throttling policy "+l.Policy+" is not defined")
	case l.Result.Unavailable:
		d.deny(&FaultThrottlingUnavailable, "throttling policy "+l.Policy+" could not be counted (its backend is unreachable; fallback deny)")
	default:
		f := throttleFaults[l.Level]
		if f == nil {
			f = &FaultThrottledCustom
		}
		d.deny(f, "throttled by "+l.Policy)
	}
	return false
}

// wso2ApplicationTier reads the application's tier from a WSO2 API Manager token:
// "application": {"tier": "10PerMin", ...}.
func wso2ApplicationTier(claims map[string]any) string {
	app, _ := claims["application"].(map[string]any)
	tier, _ := app["tier"].(string)
	return tier
}

// wso2SubscriptionTier reads the subscription tier of api from a WSO2 API Manager token:
// the "subscribedAPIs" entry with the API's version and its name (title) or context.
func wso2SubscriptionTier(claims map[string]any, api *apimodel.API) string {
	subs, _ := claims["subscribedAPIs"].([]any)
	for _, s := range subs {
		sub, _ := s.(map[string]any)
		name, _ := sub["name"].(string)
		context, _ := sub["context"].(string)
		version, _ := sub["version"].(string)
		if version != api.Version {
			continue
		}
		if strings.EqualFold(name, api.Title) || strings.EqualFold(name, api.Name) ||
			strings.TrimSuffix(context, "/") == strings.TrimSuffix(api.BasePath, "/") {
			tier, _ := sub["subscriptionTier"].(string)
			return tier
		}
	}
	return ""
}

// throttleFaults is the fault of a throttling deny by level.
var throttleFaults = map[ratelimit.Level]*Fault{
	ratelimit.LevelAPI:          &FaultThrottledAPI,
	ratelimit.LevelResource:     &FaultThrottledResource,
	ratelimit.LevelApplication:  &FaultThrottledApplication,
	ratelimit.LevelSubscription: &FaultThrottledSubscription,
}
