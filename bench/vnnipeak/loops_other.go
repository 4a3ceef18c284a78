//go:build !amd64 || purego

package main

func hasVNNI() bool { return false }

func hasAVX2() bool { return false }

func hasAVX512F() bool { return false }

func vpdpbusdLoop(int) { panic("vnnipeak: VPDPBUSD needs amd64") }

func vpmaddwdLoop(int) { panic("vnnipeak: VPMADDWD needs amd64") }

func vfmaddLoop(int) { panic("vnnipeak: VFMADD231PS needs amd64") }
