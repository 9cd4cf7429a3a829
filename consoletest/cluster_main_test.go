package consoletest

import (
	"os"
	"testing"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestMain removes the rosterd binary internal/cluster built for these
// tests once they are done.
func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }
