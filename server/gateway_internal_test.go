package server

import "testing"

func TestConnectionLimitPerAddress(t *testing.T) {
	cfg := &Config{MaxConnsPerIP: 2}
	g := newGateway(cfg, nil)
	a1, ok1 := g.admit("192.0.2.7:5000")
	_, ok2 := g.admit("192.0.2.7:5001")
	_, ok3 := g.admit("192.0.2.7:5002")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("admits: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := g.admit("198.51.100.1:1"); !ok {
		t.Fatal("another address was refused")
	}
	g.release(a1)
	if _, ok := g.admit("192.0.2.7:5003"); !ok {
		t.Fatal("a released slot was not reusable")
	}
	for i := 0; i < 10; i++ {
		if _, ok := g.admit("127.0.0.1:9"); !ok {
			t.Fatal("loopback is limited")
		}
		if _, ok := g.admit("[::1]:9"); !ok {
			t.Fatal("IPv6 loopback is limited")
		}
	}
	g.cfg.MaxConnsPerIP = -1
	for i := 0; i < 10; i++ {
		if _, ok := g.admit("203.0.113.9:1"); !ok {
			t.Fatal("a negative limit still limits")
		}
	}
}
