module github.com/qtool-dev/qtool/internal/gemm/asm

go 1.26.8
