package xds

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	builds          *prometheus.CounterVec
	buildSeconds    prometheus.Histogram
	nacks           *prometheus.CounterVec
	responses       *prometheus.CounterVec
	discoveryErrors prometheus.Counter
	groups          prometheus.Gauge
	groupsRefused   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_xds_builds_total",
			Help: "Builds of a gateway group's resources by result: ok (published) or rejected (failed validation; the last good ones stay).",
		}, []string{"result"}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tollgate_xds_build_seconds", Help: "Time to build, validate and publish one group's resources.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_xds_nacks_total", Help: "Configurations refused by a client, by resource type.",
		}, []string{"type"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_xds_responses_total", Help: "Discovery responses sent, by resource type.",
		}, []string{"type"}),
		discoveryErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_xds_discovery_errors_total", Help: "Unusable values under endpoints/ (the default URL serves instead).",
		}),
	}
	m.groups = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_xds_groups", Help: "Gateway groups served."})
	m.groupsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tollgate_xds_groups_refused_total", Help: "Streams refused for naming a gateway group beyond xds.maxGroups.",
	})
	if reg != nil {
		reg.MustRegister(m.builds, m.buildSeconds, m.nacks, m.responses, m.discoveryErrors, m.groups, m.groupsRefused)
	}
	return m
}
