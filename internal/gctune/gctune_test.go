package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

var sink [][]byte

// With a small live heap the floor raises GOGC so the goal reaches it; once the live heap
// is past half the floor, GOGC is back to 100; Stop restores 100.
func TestFloorFollowsTheLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	const floor = 64 << 20
	tu := Floor(floor)
	if tu == nil {
		t.Fatal("Floor returned nil with neither GOGC nor GOMEMLIMIT set")
	}
	defer tu.Stop()
	runtime.GC()
	waitFor(t, "GOGC raised for a small live heap", func() bool { return tu.Percent() > 100 })
	t.Logf("GOGC %d, heap goal %d MiB", tu.Percent(), heapGoal()>>20)
	if goal := heapGoal(); goal < floor*9/10 || goal > floor*11/10 {
		t.Errorf("heap goal %d MiB with a %d MiB floor", goal>>20, floor>>20)
	}

	for range 48 { // 48 MiB live: more than half the floor
		sink = append(sink, make([]byte, 1<<20))
	}
	runtime.GC()
	runtime.GC()
	waitFor(t, "GOGC back to 100 for a large live heap", func() bool { return tu.Percent() == 100 })
	sink = nil

	tu.Stop()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after Stop GOGC = %d, want 100", p)
	}
}

func TestAnOperatorsSettingWins(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, map[string]string{"GOGC": "200", "GOMEMLIMIT": "1GiB"}[env])
			if tu := Floor(64 << 20); tu != nil {
				tu.Stop()
				t.Errorf("Floor tuned although %s is set", env)
			}
		})
	}
}

func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
		runtime.GC()
	}
	t.Fatalf("timed out waiting for: %s", what)
}
