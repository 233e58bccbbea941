/* Baseline: the engine's own purchase SQL in a plain C loop.
 *
 * usage: c_loop DB DROP_ID PURCHASES SYNCHRONOUS BATCH
 * Prepared statements, the engine's PRAGMAs, BATCH purchases per
 * transaction (1 = one transaction per purchase). The database (schema and
 * drop) is made beforehand by the engine. Buyers are u0, u1, ... (distinct,
 * as in bench/engine_rates.py). Prints "purchases seconds".
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static sqlite3 *db;

static void die(const char *what) {
    fprintf(stderr, "c_loop: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static sqlite3_stmt *prep(const char *sql) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK) die(sql);
    return stmt;
}

static void run(sqlite3_stmt *stmt) {
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) die(sqlite3_sql(stmt));
    sqlite3_reset(stmt);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: c_loop DB DROP_ID PURCHASES SYNCHRONOUS BATCH\n");
        return 2;
    }
    long long drop_id = atoll(argv[2]), purchases = atoll(argv[3]), batch = atoll(argv[5]);
    char pragmas[256], user[64];
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        die("open");
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
             " PRAGMA mmap_size=268435456; PRAGMA cache_size=-65536; PRAGMA busy_timeout=5000;",
             argv[4]);
    if (sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK) die("pragmas");
    sqlite3_stmt *begin = prep("BEGIN IMMEDIATE"), *commit = prep("COMMIT");
    sqlite3_stmt *load_drop = prep("SELECT price, total_stock, sold, per_user_limit, hold_seconds,"
                                   " starts_at, ends_at FROM drops WHERE id = ?1");
    sqlite3_stmt *load_holding = prep("SELECT quantity FROM holdings WHERE drop_id = ?1 AND user_id = ?2");
    sqlite3_stmt *take = prep("UPDATE drops SET sold = sold + ?2 WHERE id = ?1 AND sold + ?2 <= total_stock");
    sqlite3_stmt *insert = prep("INSERT INTO orders (drop_id, user_id, quantity, amount, status,"
                                " idempotency_key, request_hash, created_at, expires_at)"
                                " VALUES (?1, ?2, ?3, ?4, 'reserved', NULL, NULL, ?5, ?6)");
    sqlite3_stmt *hold = prep("INSERT INTO holdings (drop_id, user_id, quantity) VALUES (?1, ?2, ?3)"
                              " ON CONFLICT (drop_id, user_id) DO UPDATE SET"
                              " quantity = quantity + excluded.quantity");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long long n = 0; n < purchases; n++) {
        if (n % batch == 0) run(begin);
        long long now = now_ms();
        int len = snprintf(user, sizeof user, "u%lld", n);  /* the shape the Python runs use */
        sqlite3_bind_int64(load_drop, 1, drop_id);
        if (sqlite3_step(load_drop) != SQLITE_ROW) die("load drop");
        long long price = sqlite3_column_int64(load_drop, 0), total = sqlite3_column_int64(load_drop, 1);
        long long sold = sqlite3_column_int64(load_drop, 2), limit = sqlite3_column_int64(load_drop, 3);
        long long hold_s = sqlite3_column_int64(load_drop, 4), starts = sqlite3_column_int64(load_drop, 5);
        sqlite3_reset(load_drop);
        sqlite3_bind_int64(load_holding, 1, drop_id);
        sqlite3_bind_text(load_holding, 2, user, len, SQLITE_STATIC);
        long long held = sqlite3_step(load_holding) == SQLITE_ROW ? sqlite3_column_int64(load_holding, 0) : 0;
        sqlite3_reset(load_holding);
        if (now < starts || held + 1 > limit || sold + 1 > total) die("unexpected rejection");
        sqlite3_bind_int64(take, 1, drop_id);
        sqlite3_bind_int64(take, 2, 1);
        run(take);
        if (sqlite3_changes(db) != 1) die("sold out");
        sqlite3_bind_int64(insert, 1, drop_id);
        sqlite3_bind_text(insert, 2, user, len, SQLITE_STATIC);
        sqlite3_bind_int64(insert, 3, 1);
        sqlite3_bind_int64(insert, 4, price);
        sqlite3_bind_int64(insert, 5, now);
        sqlite3_bind_int64(insert, 6, now + hold_s * 1000);
        run(insert);
        sqlite3_bind_int64(hold, 1, drop_id);
        sqlite3_bind_text(hold, 2, user, len, SQLITE_STATIC);
        sqlite3_bind_int64(hold, 3, 1);
        run(hold);
        if ((n + 1) % batch == 0 || n + 1 == purchases) run(commit);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%lld %.6f\n", purchases, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    sqlite3_close(db);
    return 0;
}
