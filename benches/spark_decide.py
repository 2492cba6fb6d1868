"""The decide step again on the keys of a kept working folder (benches/spark.sh): three times in one warm
Spark session (the first query of a session pays the JVM's warm-up, which a long cluster run amortises)
and with DuckDB, printing the marginal cost per million key rows.

Usage: spark_decide.py WORK
"""

import glob
import sys
import time

import pyarrow.parquet as pq

from newsdedup import _decide
from newsdedup import spark as driver


def main():
    work = sys.argv[1]
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in glob.glob(work + "/keys/*.parquet"))
    conf = ["spark.sql.shuffle.partitions=8", "spark.ui.enabled=false", "spark.driver.memory=2g"]
    spark = driver.start_spark("local[2]", conf)
    for i in range(3):
        t = time.monotonic()
        _decide.decide_spark(spark, work, [])
        sp = time.monotonic() - t
        t = time.monotonic()
        _decide.decide_duckdb(work, [], 2)
        du = time.monotonic() - t
        load = open("/proc/loadavg").read().split()[0]
        print(f"decide again ({i + 1}/3) over {rows:,} rows: Spark {sp:.1f} s ({sp / rows * 1e6:.2f} s per M rows), "
              f"DuckDB {du:.1f} s ({du / rows * 1e6:.2f} s per M rows); load {load}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
