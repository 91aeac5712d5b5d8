package settings

import (
	"testing"

	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

func TestMain(m *testing.M) { uitest.Main(m) }
