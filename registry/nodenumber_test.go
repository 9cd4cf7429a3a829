package registry

import (
	"testing"

	"github.com/rosterhq/roster/fsm"
)

func TestChooseNodeNumber(t *testing.T) {
	ms := []fsm.Member{{ID: "a", Node: 1}, {ID: "b", Node: 5}, {ID: "c", Node: 2}}
	for _, tc := range []struct {
		name       string
		self       string
		configured int64
		want       int64
		taken      string
	}{
		{"recorded number kept", "b", -1, 5, ""},
		{"configured number wins over the record", "b", 9, 9, ""},
		{"configured 0 is a number", "b", 0, 0, ""},
		{"new member gets the smallest free number", "d", -1, 3, ""},
		{"configured number of another member is refused", "d", 5, 3, "b"},
		{"own recorded number is not a collision", "a", 1, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, taken := chooseNodeNumber(ms, tc.self, tc.configured)
			if got != tc.want || taken != tc.taken {
				t.Fatalf("chooseNodeNumber(%q, %d) = %d, %q; want %d, %q", tc.self, tc.configured, got, taken, tc.want, tc.taken)
			}
		})
	}
}
