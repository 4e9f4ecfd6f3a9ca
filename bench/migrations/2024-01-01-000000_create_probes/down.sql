DROP TABLE bench_probes;
