// Package rls serves Tollgate's throttling policies over Envoy's own rate limit service
// protocol (envoy.service.ratelimit.v3), so Envoy's ratelimit filter can use Tollgate instead
// of envoyproxy/ratelimit. A descriptor names its policy with the entry "policy"; its other
// entries say what is counted:
//
//	rate_limits:
//	  - actions:
//	      - generic_key: {descriptor_key: policy, descriptor_value: orders-per-user}
//	      - request_headers: {header_name: x-user, descriptor_key: user}
//
// counts per x-user value under the policy orders-per-user. A descriptor without a policy
// entry, or naming an unknown policy, is not limited (and the latter is logged).
package rls

import (
	"context"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

// Server is the rate limit service.
type Server struct {
	rlsv3.UnimplementedRateLimitServiceServer
	engine *ratelimit.Engine
	log    *zap.Logger
}

// New makes the service over the engine's policies and counters.
func New(e *ratelimit.Engine, log *zap.Logger) *Server { return &Server{engine: e, log: log} }

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { rlsv3.RegisterRateLimitServiceServer(g, s) }

// ShouldRateLimit counts each descriptor against its policy; the request is over the limit
// when any descriptor is.
func (s *Server) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}
	hits := max(req.GetHitsAddend(), 1)
	for _, d := range req.GetDescriptors() {
		status := &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
		resp.Statuses = append(resp.Statuses, status)
		policy, key := "", []string{req.GetDomain()}
		for _, e := range d.GetEntries() {
			if e.GetKey() == "policy" {
				policy = e.GetValue()
				continue
			}
			key = append(key, e.GetKey()+"="+e.GetValue())
		}
		if policy == "" {
			continue
		}
		var p ratelimit.Policy
		var r ratelimit.Result
		for range hits {
			var found bool
			var err error
			p, r, found, err = s.engine.Take(ctx, policy, strings.Join(key, "|"))
			if !found {
				s.log.Warn("rate limit descriptor names an unknown policy", zap.String("policy", policy))
				break
			}
			if err != nil || !r.Allowed {
				break
			}
		}
		if p.Unlimited || p.Limit.Count == 0 {
			continue
		}
		status.CurrentLimit = limitOf(p.Limit)
		status.LimitRemaining = uint32(r.Remaining)
		status.DurationUntilReset = durationpb.New(r.Reset)
		if !r.Allowed {
			status.Code = rlsv3.RateLimitResponse_OVER_LIMIT
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
			resp.ResponseHeadersToAdd = append(resp.ResponseHeadersToAdd,
				&corev3.HeaderValue{Key: "retry-after", Value: strconv.FormatInt(max(ratelimit.Seconds(r.RetryAfter), 1), 10)})
		}
	}
	return resp, nil
}

var units = map[time.Duration]rlsv3.RateLimitResponse_RateLimit_Unit{
	time.Second: rlsv3.RateLimitResponse_RateLimit_SECOND, time.Minute: rlsv3.RateLimitResponse_RateLimit_MINUTE,
	time.Hour: rlsv3.RateLimitResponse_RateLimit_HOUR, 24 * time.Hour: rlsv3.RateLimitResponse_RateLimit_DAY,
}

func limitOf(l ratelimit.Limit) *rlsv3.RateLimitResponse_RateLimit {
	if u, ok := units[l.Period]; ok {
		return &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: uint32(l.Count), Unit: u}
	}
	return &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: uint32(float64(l.Count) / l.Period.Seconds()), Unit: rlsv3.RateLimitResponse_RateLimit_SECOND}
}
