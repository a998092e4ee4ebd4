package registrytest

import (
	"net/http"
	"testing"
)

func TestStartStop(t *testing.T) {
	for _, auth := range []bool{false, true} {
		s := Start(t, auth)
		code, _, err := s.Get("/v2/", "")
		if err != nil || code != http.StatusOK {
			t.Fatalf("auth=%v: GET /v2/ = %d, %v", auth, code, err)
		}
		if auth {
			user := s.User
			s.User = ""
			if code, _, _ := s.Get("/v2/", ""); code != http.StatusUnauthorized {
				t.Fatalf("without credentials: %d, want 401", code)
			}
			s.User = user
		}
		s.Stop()
		if _, _, err := s.Get("/v2/", ""); err == nil {
			t.Fatal("answers after Stop")
		}
		if err := s.Relaunch(); err != nil {
			t.Fatal(err)
		}
	}
}
