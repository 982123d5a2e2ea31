package testutil

import "runtime"

// Allocated is how many bytes the process has allocated so far: the difference across a
// call bounds what it allocated. (runtime/metrics would not stop the world, but counts a
// span's bytes when a cache takes it, not as they are allocated: too coarse to tell one
// call's allocations.)
func Allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}
