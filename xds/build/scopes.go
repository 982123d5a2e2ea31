package build

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// Route scopes. With Options.RouteScopes the gateway's routes are not one table: a scope
// per first path segment of the APIs' base paths ("/shop/v1/items" → "shop"), picked by
// Envoy's scoped routes (SRDS) from the request's :path, names one of up to scopeBuckets
// route tables (the segment's hash picks it, so adding an API moves no other): changing
// one API resends its table — about 1/64 of the routes once there are many APIs — instead
// of every API's routes to every Envoy, and an Envoy subscribes to at most 64 tables
// however many APIs there are. A group is scoped only when every API can be keyed that way
// (scopeKey); otherwise it keeps the one table, which serves every request the same.

// ScopedRoutesName names the scoped routes of the gateway's listeners.
const ScopedRoutesName = "tollgate_scopes"

// scopeBuckets is the most route tables the scopes share.
const scopeBuckets = 64

// ScopeRouteName is the route table of the scope of first path segment seg.
func ScopeRouteName(seg string) string {
	h := fnv.New32a()
	h.Write([]byte(seg))
	return fmt.Sprintf("%s/%02d", RouteConfigName, h.Sum32()%scopeBuckets)
}

// scopeKey is the first segment of every request path an API serves, or "" when its
// requests cannot be keyed by it: a root base path, a template in the first segment, or a
// base path of one segment with an operation on the base path itself ("/shop?page=2" would
// reach Envoy's key builder as the segment "shop?page=2").
func scopeKey(a *apimodel.API) string {
	base := strings.Trim(a.BasePath, "/")
	if base == "" {
		return ""
	}
	first, rest, _ := strings.Cut(base, "/")
	if strings.ContainsAny(first, "{}*?#%") {
		return ""
	}
	if rest == "" {
		for _, op := range a.Operations {
			if p := strings.Trim(op.Path, "/"); p == "" || p == "*" {
				return ""
			}
		}
	}
	return first
}

// scopedTables groups the APIs by scope key, or returns false when one API has none.
func scopedTables(apis []apiRoutes) (map[string][]apiRoutes, bool) {
	if len(apis) == 0 {
		return nil, false
	}
	out := map[string][]apiRoutes{}
	for _, ar := range apis {
		k := scopeKey(ar.api)
		if k == "" {
			return nil, false
		}
		out[k] = append(out[k], ar)
	}
	return out, true
}

// scopes makes the route tables of the scopes and the scope resources that pick them.
func scopes(byKey map[string][]apiRoutes) (tables, scoped []types.Resource) {
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	byTable := map[string][]apiRoutes{}
	for _, k := range keys {
		byTable[ScopeRouteName(k)] = append(byTable[ScopeRouteName(k)], byKey[k]...)
	}
	names := make([]string, 0, len(byTable))
	for n := range byTable {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		apis := byTable[n]
		sort.SliceStable(apis, func(i, j int) bool { return apis[i].api.ID() < apis[j].api.ID() })
		tables = append(tables, routeTable(n, apis))
	}
	for _, k := range keys {
		scoped = append(scoped, &routev3.ScopedRouteConfiguration{
			Name:                   "tollgate_scope/" + k,
			RouteConfigurationName: ScopeRouteName(k),
			Key: &routev3.ScopedRouteConfiguration_Key{Fragments: []*routev3.ScopedRouteConfiguration_Key_Fragment{{
				Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: k},
			}}},
		})
	}
	return tables, scoped
}

// scopedRoutes is the HCM's route specifier when the routes are scoped: the key is the
// :path header's second "/"-separated element (the first segment), the scopes and their
// tables come over ADS.
func scopedRoutes() *hcmv3.HttpConnectionManager_ScopedRoutes {
	return &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{
		Name: ScopedRoutesName,
		ScopeKeyBuilder: &hcmv3.ScopedRoutes_ScopeKeyBuilder{Fragments: []*hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{{
			Type: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{HeaderValueExtractor: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{
				Name: ":path", ElementSeparator: "/",
				ExtractType: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index{Index: 1},
			}},
		}}},
		RdsConfigSource: ADS(),
		ConfigSpecifier: &hcmv3.ScopedRoutes_ScopedRds{ScopedRds: &hcmv3.ScopedRds{ScopedRdsConfigSource: ADS()}},
	}}
}

// ScopeOf is the scope key Envoy computes for a request path with the scoped routes above:
// the second element of the path split at "/" (the query included), "" when there is none.
func ScopeOf(path string) string {
	parts := strings.Split(path, "/")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}
