package jwt

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	verify    *prometheus.CounterVec
	cacheHits prometheus.Counter
	jwksFetch *prometheus.CounterVec
	// keysSkipped counts JWKS keys left out, by issuer and reason.
	keysSkipped *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		verify: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_jwt_verifications_total",
			Help: "Token signature verifications (cache misses) by result: ok, malformed, invalid, expired.",
		}, []string{"result"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_jwt_cache_hits_total",
			Help: "Tokens answered from the verified-token cache without a signature check.",
		}),
		jwksFetch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_jwks_fetches_total",
			Help: "JWKS fetches by issuer and result (ok, error).",
		}, []string{"issuer", "result"}),
		keysSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_jwks_keys_skipped_total",
			Help: "JWKS keys left out because they cannot be used, by issuer and reason (invalid, unsupported, symmetric, encryption); the other keys of the set are used.",
		}, []string{"issuer", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.verify, m.cacheHits, m.jwksFetch, m.keysSkipped)
	}
	return m
}
