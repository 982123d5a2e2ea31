// Package gctune gives the garbage collector a heap floor. With Go's default (GOGC=100) a
// process whose live heap is a few megabytes collects every few megabytes of allocation:
// an enforcer answering 25,000 Checks a second on 2 cores ran 60 collections a second,
// each taking a quarter of the CPUs for its mark phase, which was most of the distance
// between its p99 and a do-nothing server's. Floor keeps the next heap goal at least a
// given size while the live heap is small, and leaves GOGC's proportional rule alone
// once the live heap is large (then a floor would only cost memory).
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// DefaultFloor is the heap goal the servers keep at least: 64 MiB of garbage between
// collections costs little memory next to what one collection every 4 MiB costs in CPU.
const DefaultFloor = 64 << 20

// heapMinimum is the runtime's smallest heap goal at GOGC=100 (defaultHeapMinimum).
const heapMinimum = 4 << 20

// Tuner re-sets GOGC after every collection.
type Tuner struct {
	floor   uint64
	stopped atomic.Bool
	sample  []metrics.Sample
	percent atomic.Int64 // the GOGC last set
}

// Floor starts keeping the heap goal at least floor bytes. It does nothing (and returns
// nil) when the environment sets GOGC or GOMEMLIMIT: an operator's setting wins.
func Floor(floor uint64) *Tuner {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" || floor == 0 {
		return nil
	}
	t := &Tuner{floor: floor, sample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	t.tune()
	t.arm()
	return t
}

// Stop restores GOGC=100 and stops tuning.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.stopped.Store(true)
	debug.SetGCPercent(100)
}

// Percent is the GOGC the tuner set last.
func (t *Tuner) Percent() int { return int(t.percent.Load()) }

// sentinel is allocated for each cycle; its cleanup runs after the collection that found
// it unreachable. It holds a pointer so that it is not a tiny allocation (those are
// batched and their cleanups may never run).
type sentinel struct {
	_ *int
	_ [16]byte
}

func (t *Tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *Tuner) {
		if t.stopped.Load() {
			return
		}
		t.tune()
		t.arm()
	}, t)
}

// tune sets GOGC so that the next goal is at least the floor, and never below 100. The
// runtime's goal is live + (live + stacks + globals) × GOGC/100 (the GC pacer since Go
// 1.18), and never less than 4 MiB × GOGC/100 (its heap minimum), so the divisor is the
// larger of the two bases.
func (t *Tuner) tune() {
	metrics.Read(t.sample)
	var v [3]uint64
	for i, s := range t.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	live, base := v[0], max(v[0]+v[1]+v[2], heapMinimum)
	p := int64(100)
	if live < t.floor/2 {
		p = max(100, int64((t.floor-live)*100/base))
	}
	if p != t.percent.Load() {
		debug.SetGCPercent(int(p))
		t.percent.Store(p)
	}
}
