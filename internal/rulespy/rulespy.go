package rulespy

import (
	"fmt"
	"sync"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/registry"
)

// Spy is the node, noting every write its MayApply is asked about.
type Spy struct {
	*registry.Node
	mu    sync.Mutex
	asked []string
}

// MayApply notes the check, as Describe writes it, then asks the node.
func (s *Spy) MayApply(g registry.Grants, st *fsm.State, c fsm.Command, a registry.Answer) error {
	s.mu.Lock()
	s.asked = append(s.asked, Describe(c, a))
	s.mu.Unlock()
	return s.Node.MayApply(g, st, c, a)
}

// Take returns the checks noted since the last Take, in order, and
// forgets them.
func (s *Spy) Take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.asked
	s.asked = nil
	return out
}

// Describe is how a check of c, whose answer shows a, is noted.
func Describe(c fsm.Command, a registry.Answer) string {
	s := fmt.Sprintf("%T%+v", c, c)
	if a == registry.AnswerPrev {
		s += " prev"
	}
	return s
}
