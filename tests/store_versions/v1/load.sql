COPY curves FROM '@DIR@/curves.csv' (FORMAT 'csv', allow_quoted_nulls false, quote '"', delimiter ',', header 1);
COPY meta FROM '@DIR@/meta.csv' (FORMAT 'csv', allow_quoted_nulls false, force_not_null 'key', quote '"', delimiter ',', header 1);
COPY metrics FROM '@DIR@/metrics.csv' (FORMAT 'csv', allow_quoted_nulls false, force_not_null ('run_id', 'split', 'name'), quote '"', delimiter ',', header 1);
COPY provenance FROM '@DIR@/provenance.csv' (FORMAT 'csv', allow_quoted_nulls false, force_not_null 'run_id', quote '"', delimiter ',', header 1);
COPY runs FROM '@DIR@/runs.csv' (FORMAT 'csv', allow_quoted_nulls false, force_not_null 'run_id', quote '"', delimiter ',', header 1);
COPY suites FROM '@DIR@/suites.csv' (FORMAT 'csv', allow_quoted_nulls false, force_not_null ('name', 'version'), quote '"', delimiter ',', header 1);
