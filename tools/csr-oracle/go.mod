module ferrum.dev/tools/csr-oracle

go 1.24
