package rescache

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// lacks, the one answer to what a stream lacks, case by case. The cache's history: change 1
// sets a, b, c; change 2 changes a; change 3 removes c and adds d; change 4 changes b,
// removes d, adds c back and adds e; change 5 removes c again.
func TestLacks(t *testing.T) {
	c := New(resourcev3.EndpointType, "l-", nil)
	for _, set := range [][]types.Resource{
		{cla("a", 1), cla("b", 1), cla("c", 1)},
		{cla("a", 2), cla("b", 1), cla("c", 1)},
		{cla("a", 2), cla("b", 1), cla("d", 1)},
		{cla("a", 2), cla("b", 2), cla("c", 1), cla("e", 1)},
		{cla("a", 2), cla("b", 2), cla("e", 1)},
	} {
		if err := c.Set(set); err != nil {
			t.Fatal(err)
		}
	}
	hash := func(name string) string { return c.res[name].hash }
	wildcard := sub{wildcard: true}
	for _, tc := range []struct {
		name       string
		sub        sub
		h          holding
		send, gone []string
	}{
		{"a new stream: all it subscribes to", newSub("a", "c", "e"), holding{}, []string{"a", "e"}, nil},
		{"a new wildcard stream: everything", wildcard, holding{}, []string{"a", "b", "e"}, nil},
		{"reconnecting with versions: what differs, and what is gone",
			newSub("a", "b", "c"), holding{versions: map[string]string{"a": hash("a"), "b": "old", "c": "x"}}, []string{"b"}, []string{"c"}},
		{"up to date with the same names: nothing", newSub("a", "b"), holding{known: true, asOf: 5}, nil, nil},
		{"one change behind: the removal of what it subscribes to", newSub("a", "c"), holding{known: true, asOf: 4}, nil, []string{"c"}},
		{"one change behind, not concerned", newSub("a", "b"), holding{known: true, asOf: 4}, nil, nil},
		{"three behind: what changed since, each once; what was removed, each once",
			newSub("a", "b", "c", "d"), holding{known: true, asOf: 2}, []string{"b"}, []string{"c", "d"}},
		{"a wildcard stream three behind", wildcard, holding{known: true, asOf: 2, all: true}, []string{"b", "e"}, []string{"c", "d"}},
		{"fresh names: sent though unchanged; one not held is not", newSub("a", "b", "x"), holding{known: true, asOf: 5, fresh: []string{"a", "x"}}, []string{"a"}, nil},
		{"a fresh name that also changed is sent once", newSub("a", "b"), holding{known: true, asOf: 3, fresh: []string{"b"}}, []string{"b"}, nil},
		{"a fresh name the request unsubscribes from again is not sent", newSub("b"), holding{known: true, asOf: 5, fresh: []string{"a"}}, nil, nil},
		{"names it held unknown: everything it subscribes to", newSub("a", "b"), holding{known: true, asOf: 5, freshAll: true}, []string{"a", "b"}, nil},
		{"a name to send again (a wildcard stream unsubscribed from it by name)",
			wildcard, holding{known: true, asOf: 5, all: true, versions: map[string]string{"a": "", "zz": ""}}, []string{"a"}, []string{"zz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.mu.Lock()
			send, gone := c.lacks(&tc.sub, tc.h)
			c.mu.Unlock()
			var sent []string
			for _, e := range send {
				sent = append(sent, e.name)
			}
			slices.Sort(sent)
			slices.Sort(gone)
			if !slices.Equal(sent, tc.send) || !slices.Equal(gone, tc.gone) {
				t.Errorf("lacks sends %v and removes %v, want %v and %v", sent, gone, tc.send, tc.gone)
			}
		})
	}
	// Further behind than the recent log: what changed since its version, by each
	// resource's change count, and every name it subscribes to that is not held.
	for range recentChanges {
		if err := c.Set([]types.Resource{cla("a", 2), cla("b", 2), cla("e", 1), cla(fmt.Sprint("churn", c.n), 1)}); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logged(4) {
		t.Fatal("change 4 is still logged")
	}
	send, gone := c.lacks(&sub{names: map[string]struct{}{"a": {}, "b": {}, "c": {}}}, holding{known: true, asOf: 3})
	if len(send) != 1 || send[0].name != "b" || !slices.Equal(gone, []string{"c"}) {
		t.Errorf("far behind: sends %d (%v) and removes %v, want b and c", len(send), send, gone)
	}
	// A wildcard stream that far behind is told of what was removed since, from the
	// tombstones: c and d were removed after change 3, and each churn name but the last.
	_, gone = c.lacks(&sub{wildcard: true}, holding{known: true, asOf: 3, all: true})
	if len(gone) != recentChanges+1 || !slices.Contains(gone, "c") || !slices.Contains(gone, "d") || slices.Contains(gone, fmt.Sprint("churn", c.n-1)) {
		t.Errorf("a wildcard stream far behind is told %d removals (%v)", len(gone), gone)
	}
	// When those may have been forgotten, a delta stream must reconnect to say what it holds.
	c.forgotten = 10
	if !c.lost(holding{known: true, asOf: 3}) || c.lost(holding{known: true, asOf: c.n - 1}) || c.lost(holding{}) {
		t.Error("lost: want true only for a known stream behind the log and the tombstones")
	}
	behind := &sub{wildcard: true, held: Held{AsOf: 3, Wildcard: true}}
	c.mu.Unlock()
	_, err := c.CreateDeltaWatch(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResponseNonce: "9"}, behind, make(chan cachev3.DeltaResponse, 1))
	c.mu.Lock()
	if !errors.Is(err, ErrResync) {
		t.Errorf("a delta watch of a stream past the tombstones: %v, want ErrResync", err)
	}
}
