// Package buildinfo says which build of Tollgate is running: the module version, the VCS
// revision and time the binary was built from, and the Go version — for `tollgate version`
// and the tollgate_build_info metric.
package buildinfo

import (
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Info is one build's identity.
type Info struct {
	Version   string `json:"version"`  // module version, "(devel)" for a local build
	Revision  string `json:"revision"` // VCS revision, "" when unknown
	Time      string `json:"time"`     // VCS commit time (RFC 3339), "" when unknown
	Modified  bool   `json:"modified"` // built from a tree with uncommitted changes
	GoVersion string `json:"goVersion"`
}

// version is the release version stamped at build time (make release, the Dockerfile):
// -ldflags "-X github.com/tollgate-gw/tollgate/internal/buildinfo.version=v1.2.3". Empty:
// the module version the go command recorded ("(devel)" for a local build).
var version string

// Read is this binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown"}
	}
	i := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if version != "" {
		i.Version = version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// Register adds tollgate_build_info (always 1, the build in its labels) to reg.
func Register(reg prometheus.Registerer) {
	i := Read()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "tollgate_build_info",
		Help:        "The running build: module version, VCS revision and Go version (always 1).",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion},
	})
	g.Set(1)
	reg.MustRegister(g)
}
