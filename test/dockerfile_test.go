package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	tgconfig "github.com/tollgate-gw/tollgate/internal/config"
)

// The image a user can trust (issue 24): base images pinned by digest, a non-root user, the
// data directory a volume that the image's configuration uses, OCI labels with the version
// stamped into the binary, what the default command names in the image, and a build
// context without build outputs, the data directory (the development signing key) or keys.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("FROM lines: %v", froms)
	}
	for _, f := range froms {
		if !regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(f[1]) {
			t.Errorf("base image %s is not pinned by digest", f[1])
		}
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(df)
	if user == nil || strings.HasPrefix(user[1], "0") || user[1] == "root" {
		t.Errorf("USER %v: the image must not run as root", user)
	}
	volume := regexp.MustCompile(`(?m)^VOLUME (\S+)`).FindStringSubmatch(df)
	cfg, err := tgconfig.Load("../cmd/tollgate/container.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if volume == nil || volume[1] != cfg.DataDir {
		t.Errorf("VOLUME %v, but the image's configuration keeps its data in %s", volume, cfg.DataDir)
	}
	for _, label := range []string{"org.opencontainers.image.version=\"${VERSION}\"", "org.opencontainers.image.revision", "org.opencontainers.image.licenses=\"Apache-2.0\"", "org.opencontainers.image.source"} {
		if !strings.Contains(df, label) {
			t.Errorf("no OCI label %s", label)
		}
	}
	if !strings.Contains(df, "internal/buildinfo.version=${VERSION}") {
		t.Errorf("the image's binary does not carry its version")
	}
	// The default command's files are copied into the image.
	cmd := regexp.MustCompile(`(?m)^CMD \[(.*)\]`).FindStringSubmatch(df)
	if cmd == nil || strings.Contains(cmd[1], "--dev") {
		t.Fatalf("CMD %v: a default command without the development issuer", cmd)
	}
	for _, arg := range regexp.MustCompile(`"(/[^"]+)"`).FindAllStringSubmatch(cmd[1], -1) {
		switch {
		case strings.HasPrefix(arg[1], "/examples/"):
			if _, err := os.Stat(filepath.Join("..", arg[1])); err != nil {
				t.Errorf("CMD names %s: %v", arg[1], err)
			}
		case arg[1] == "/etc/tollgate/tollgate.yaml":
			if !strings.Contains(df, "COPY cmd/tollgate/container.yaml /etc/tollgate/tollgate.yaml") {
				t.Errorf("CMD names %s, which the image does not have", arg[1])
			}
		}
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{".git", "bin/", "data/", "dist/"} {
		if !regexp.MustCompile(`(?m)^/?` + regexp.QuoteMeta(must) + `$`).Match(ignore) {
			t.Errorf(".dockerignore lets %s into the build context", must)
		}
	}
}
