//go:build amd64 && !purego

package main

import "golang.org/x/sys/cpu"

func hasVNNI() bool { return cpu.X86.HasAVX512F && cpu.X86.HasAVX512VNNI }

func hasAVX2() bool { return cpu.X86.HasAVX2 }

func hasAVX512F() bool { return cpu.X86.HasAVX512F }

// vpdpbusdLoop runs iterations of 12 independent VPDPBUSD on zmm registers.
func vpdpbusdLoop(iterations int)

// vpmaddwdLoop runs iterations of 6 VPMADDWD, each followed by the VPADDD
// that accumulates it, on ymm registers.
func vpmaddwdLoop(iterations int)

// vfmaddLoop runs iterations of 12 independent VFMADD231PS on zmm
// registers.
func vfmaddLoop(iterations int)
