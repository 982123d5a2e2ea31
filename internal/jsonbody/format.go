package jsonbody

import (
	"encoding/base64"
	"math"
	"net/netip"
	"time"
)

// stringFormats are the string formats checked: OpenAPI's and JSON Schema's with one
// precise meaning that descriptions use as they mean it. Any other format is an annotation,
// as JSON Schema says: uuid and email among them, which real descriptions put on ids and
// addresses that are not (Intercom's 24-digit hexadecimal ids are "uuid"), and which a
// gateway must not refuse where the backend would not.
var stringFormats = map[string]func([]byte) bool{
	"date-time": func(b []byte) bool { _, err := time.Parse(time.RFC3339Nano, string(b)); return err == nil },
	"date":      func(b []byte) bool { _, err := time.Parse(time.DateOnly, string(b)); return err == nil && len(b) == 10 },
	"time":      fullTime,
	"byte":      isBase64,
	"ipv4":      func(b []byte) bool { a, err := netip.ParseAddr(string(b)); return err == nil && a.Is4() },
	"ipv6": func(b []byte) bool {
		a, err := netip.ParseAddr(string(b))
		return err == nil && a.Is6() && a.Zone() == ""
	},
}

// fullTime is RFC 3339's full-time: 23:20:50Z, 23:20:50.52+01:00.
func fullTime(b []byte) bool {
	_, err := time.Parse("2006-01-02T"+"15:04:05Z07:00", "2000-01-01T"+string(b))
	return err == nil
}

func isBase64(b []byte) bool {
	if len(b)%4 != 0 {
		_, err := base64.RawStdEncoding.DecodeString(string(b))
		return err == nil
	}
	_, err := base64.StdEncoding.DecodeString(string(b))
	return err == nil
}

// numberFormats bound integers to their width.
var numberFormats = map[string][2]float64{
	"int32": {math.MinInt32, math.MaxInt32},
	"int64": {math.MinInt64, math.MaxInt64},
}
