#include "scheduler/build_journal.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace longshore::scheduler {
namespace {

using longshore::v1::BuildEvent;
using longshore::v1::BuildState;

absl::Status SqliteError(sqlite3* db, const std::string& operation) {
  int code = sqlite3_extended_errcode(db);
  std::string message =
      absl::StrCat("sqlite ", operation, ": ", sqlite3_errmsg(db));
  if ((code & 0xff) == SQLITE_CONSTRAINT) {
    return absl::AlreadyExistsError(message);
  }
  if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

}  // namespace

// Owns one prepared statement; binds are 1-based as in SQLite.
class JournalStatement {
 public:
  JournalStatement(sqlite3* db, const char* sql) : db_(db), sql_(sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~JournalStatement() { sqlite3_finalize(stmt_); }
  JournalStatement(const JournalStatement&) = delete;
  JournalStatement& operator=(const JournalStatement&) = delete;

  absl::Status status() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return SqliteError(db_, absl::StrCat("prepare(", sql_, ")"));
  }
  void Bind(int i, const std::string& text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& bytes) {
    sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()),
                      SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }

  // True for a row, false when done.
  absl::StatusOr<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, absl::StrCat("step(", sql_, ")"));
  }
  absl::Status Run() {
    ASSIGN_OR_RETURN(bool row, Step());
    (void)row;
    return absl::OkStatus();
  }
  // Ready to run again with new bindings.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p), n);
  }
  std::string Blob(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string()
                        : std::string(static_cast<const char*>(p), n);
  }

 private:
  sqlite3* db_;
  const char* sql_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

namespace {

using Statement = JournalStatement;

// Resets a cached statement (and clears its bindings) when the call is done
// with it, so the next user starts clean and no read transaction stays open.
class ResetOnExit {
 public:
  explicit ResetOnExit(Statement* s) : s_(s) {}
  ~ResetOnExit() { s_->Reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Statement* s_;
};

#define LONGSHORE_BUILD_COLUMNS                                           \
  "id, spec, state, attempt, worker, cancel_requested, cancel_reason, "   \
  "created_ns, queued_ns, started_ns, finished_ns, image_digest, error, " \
  "result, ord, leader"
constexpr char kBuildColumns[] = LONGSHORE_BUILD_COLUMNS;

absl::StatusOr<BuildRecord> ReadBuildRow(Statement& s) {
  BuildRecord r;
  r.id = s.Text(0);
  if (!r.spec.ParseFromString(s.Blob(1))) {
    return absl::DataLossError("journal: spec of build " + r.id +
                               " does not parse");
  }
  r.state = static_cast<BuildState>(s.Int(2));
  r.attempt = static_cast<int>(s.Int(3));
  r.worker_id = s.Text(4);
  r.cancel_requested = s.Int(5) != 0;
  r.cancel_reason = s.Text(6);
  r.created_ns = s.Int(7);
  r.queued_ns = s.Int(8);
  r.started_ns = s.Int(9);
  r.finished_ns = s.Int(10);
  r.image_digest = s.Text(11);
  r.error = s.Text(12);
  if (!r.result.ParseFromString(s.Blob(13))) {
    return absl::DataLossError("journal: result of build " + r.id +
                               " does not parse");
  }
  r.order = s.Int(14);
  r.leader_id = s.Text(15);
  return r;
}

// Every row of a SELECT of kBuildColumns, with `text` bound to ?1 when set.
absl::StatusOr<std::vector<BuildRecord>> QueryBuilds(
    sqlite3* db, const std::string& sql, const std::string& text = "") {
  Statement s(db, sql.c_str());
  RETURN_IF_ERROR(s.status());
  if (!text.empty()) s.Bind(1, text);
  std::vector<BuildRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(BuildRecord r, ReadBuildRow(s));
    out.push_back(std::move(r));
  }
  return out;
}

// Binds every column but ord, in kBuildColumns order starting at `first`; the
// spec only when `with_spec` (it is written once, by Insert).
void BindBuild(Statement& s, const BuildRecord& r, int first, bool with_spec) {
  s.Bind(first + 0, r.id);
  if (with_spec) s.BindBlob(first + 1, r.spec.SerializeAsString());
  s.Bind(first + 2, static_cast<int64_t>(r.state));
  s.Bind(first + 3, static_cast<int64_t>(r.attempt));
  s.Bind(first + 4, r.worker_id);
  s.Bind(first + 5, static_cast<int64_t>(r.cancel_requested ? 1 : 0));
  s.Bind(first + 6, r.cancel_reason);
  s.Bind(first + 7, r.created_ns);
  s.Bind(first + 8, r.queued_ns);
  s.Bind(first + 9, r.started_ns);
  s.Bind(first + 10, r.finished_ns);
  s.Bind(first + 11, r.image_digest);
  s.Bind(first + 12, r.error);
  s.BindBlob(first + 13, r.result.SerializeAsString());
  s.Bind(first + 14, r.leader_id);
}

}  // namespace

class BuildJournal::Access {
 public:
  explicit Access(BuildJournal* j)
      : j_(j), held_(j->batch_owner_.load() != std::this_thread::get_id()) {
    if (held_) {
      j_->mu_.Lock();
      j_->CommitOpenLocked();  // Never read what may still roll back.
    }
  }
  ~Access() {
    if (held_) j_->mu_.Unlock();
  }
  Access(const Access&) = delete;
  Access& operator=(const Access&) = delete;

 private:
  BuildJournal* j_;
  const bool held_;
};

BuildJournal::Batch::Batch(BuildJournal* journal) : journal_(journal) {
  journal_->BeginBatch();
}

BuildJournal::Batch::~Batch() { journal_->EndBatch(); }

void BuildJournal::BeginBatch() {
  if (batch_owner_.load() == std::this_thread::get_id()) {
    ++batch_depth_;
    return;
  }
  mu_.Lock();
  batch_owner_ = std::this_thread::get_id();
  batch_depth_ = 1;
  if (!open_) {
    absl::Status st = Exec("BEGIN IMMEDIATE");
    if (!st.ok()) LS_LOG(ERROR) << "journal: " << st;
    open_ = st.ok();
  }
}

void BuildJournal::EndBatch() {
  if (--batch_depth_ > 0) return;
  // Left open for the committer, so the next calls' writes can join.
  batch_owner_ = std::thread::id();
  mu_.Unlock();
}

void BuildJournal::CommitOpenLocked() {
  if (!open_) return;
  open_ = false;
  const absl::Time start = absl::Now();
  absl::Status st = Exec("COMMIT");
  if (commit_observer_) commit_observer_(absl::Now() - start);
  if (!st.ok()) {
    // Nothing written since BEGIN can be trusted; the callers logged and
    // acted on writes that are now gone, which the next start reconciles
    // from what the journal holds.
    LS_LOG(ERROR) << "journal: " << st;
    (void)Exec("ROLLBACK");
  }
}

void BuildJournal::Sync() { Access lock(this); }

void BuildJournal::CommitLoop() {
  absl::MutexLock lock(&mu_);
  auto idle_open = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return stop_ || (open_ && batch_owner_.load() == std::thread::id());
  };
  auto stopping = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_; };
  while (true) {
    mu_.Await(absl::Condition(&idle_open));
    if (stop_) break;
    // The group window: calls arriving meanwhile write into this transaction.
    mu_.AwaitWithTimeout(absl::Condition(&stopping), group_window_);
    if (batch_owner_.load() == std::thread::id()) CommitOpenLocked();
  }
  CommitOpenLocked();
}

absl::StatusOr<JournalStatement*> BuildJournal::Prepared(const char* sql) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    auto s = std::make_unique<JournalStatement>(db_, sql);
    RETURN_IF_ERROR(s->status());
    it = prepared_.emplace(sql, std::move(s)).first;
  }
  return it->second.get();
}

BuildJournal::BuildJournal(sqlite3* db, absl::Duration group_window)
    : db_(db), group_window_(group_window) {
  committer_ = std::thread([this] { CommitLoop(); });
}

absl::StatusOr<std::unique_ptr<BuildJournal>> BuildJournal::Open(
    const std::string& path, absl::Duration group_window) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError("sqlite open(" + path + "): " + message);
  }
  std::unique_ptr<BuildJournal> journal(new BuildJournal(db, group_window));
  RETURN_IF_ERROR(journal->Init());
  return journal;
}

BuildJournal::~BuildJournal() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  committer_.join();  // It commits what is open.
  Access lock(this);
  prepared_.clear();  // Statements are finalized before the database closes.
  sqlite3_close(db_);
}

absl::Status BuildJournal::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(
        absl::StrCat("sqlite exec(", sql, "): ", message));
  }
  return absl::OkStatus();
}

absl::Status BuildJournal::Init() {
  Access lock(this);
  sqlite3_busy_timeout(db_, 5000);
  // WAL with synchronous=NORMAL survives a crash of the scheduler process
  // without an fsync per event; only a power loss can drop the last
  // transactions.
  RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(Exec("PRAGMA synchronous=NORMAL"));
  RETURN_IF_ERROR(
      Exec("CREATE TABLE IF NOT EXISTS builds ("
           "  ord INTEGER PRIMARY KEY AUTOINCREMENT,"
           "  id TEXT NOT NULL UNIQUE,"
           "  spec BLOB NOT NULL,"
           "  state INTEGER NOT NULL,"
           "  attempt INTEGER NOT NULL,"
           "  worker TEXT NOT NULL DEFAULT '',"
           "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
           "  cancel_reason TEXT NOT NULL DEFAULT '',"
           "  created_ns INTEGER NOT NULL DEFAULT 0,"
           "  queued_ns INTEGER NOT NULL DEFAULT 0,"
           "  started_ns INTEGER NOT NULL DEFAULT 0,"
           "  finished_ns INTEGER NOT NULL DEFAULT 0,"
           "  image_digest TEXT NOT NULL DEFAULT '',"
           "  error TEXT NOT NULL DEFAULT '',"
           "  result BLOB NOT NULL DEFAULT x'')"));
  // Journals from before merged submissions lack the column.
  if (absl::Status st = Exec("ALTER TABLE builds ADD COLUMN leader TEXT NOT "
                             "NULL DEFAULT ''");
      !st.ok() && !absl::StrContains(st.message(), "duplicate column")) {
    return st;
  }
  // ...and before tenancy, the submitter column (filled from the specs).
  if (absl::Status st = Exec("ALTER TABLE builds ADD COLUMN submitter TEXT "
                             "NOT NULL DEFAULT ''");
      st.ok()) {
    RETURN_IF_ERROR(BackfillSubmitters());
  } else if (!absl::StrContains(st.message(), "duplicate column")) {
    return st;
  }
  RETURN_IF_ERROR(
      Exec("CREATE INDEX IF NOT EXISTS builds_by_state ON builds(state, ord)"));
  RETURN_IF_ERROR(Exec(
      "CREATE INDEX IF NOT EXISTS builds_by_submitter ON builds(submitter, "
      "ord)"));
  RETURN_IF_ERROR(
      Exec("CREATE TABLE IF NOT EXISTS events ("
           "  build_id TEXT NOT NULL,"
           "  seq INTEGER NOT NULL,"
           "  data BLOB NOT NULL,"
           "  PRIMARY KEY (build_id, seq)) WITHOUT ROWID"));
  RETURN_IF_ERROR(
      Exec("CREATE TABLE IF NOT EXISTS outputs ("
           "  build_id TEXT NOT NULL,"
           "  idx INTEGER NOT NULL,"
           "  attempt INTEGER NOT NULL,"
           "  digest TEXT NOT NULL,"
           "  size INTEGER NOT NULL,"
           "  PRIMARY KEY (build_id, idx)) WITHOUT ROWID"));
  RETURN_IF_ERROR(
      Exec("CREATE TABLE IF NOT EXISTS drained_workers ("
           "  id TEXT PRIMARY KEY) WITHOUT ROWID"));
  return absl::OkStatus();
}

absl::Status BuildJournal::Insert(BuildRecord* record) {
  Access lock(this);
  ASSIGN_OR_RETURN(
      Statement * stmt,
      Prepared("INSERT INTO builds (id, spec, state, attempt, worker, "
               "cancel_requested, cancel_reason, created_ns, queued_ns, "
               "started_ns, finished_ns, image_digest, error, result, leader, "
               "submitter) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
               "?11, ?12, ?13, ?14, ?15, ?16)"));
  ResetOnExit reset(stmt);
  Statement& s = *stmt;
  BindBuild(s, *record, 1, /*with_spec=*/true);
  s.Bind(16, record->spec.submitter());
  absl::Status st = s.Run();
  if (absl::IsAlreadyExists(st)) {
    return absl::AlreadyExistsError("build " + record->id + " already exists");
  }
  RETURN_IF_ERROR(st);
  record->order = sqlite3_last_insert_rowid(db_);
  return absl::OkStatus();
}

absl::Status BuildJournal::Update(const BuildRecord& record) {
  Access lock(this);
  ASSIGN_OR_RETURN(
      Statement * stmt,
      Prepared("UPDATE builds SET state=?3, attempt=?4, worker=?5, "
               "cancel_requested=?6, cancel_reason=?7, created_ns=?8, "
               "queued_ns=?9, started_ns=?10, finished_ns=?11, "
               "image_digest=?12, error=?13, result=?14, leader=?15 "
               "WHERE id=?1"));
  ResetOnExit reset(stmt);
  Statement& s = *stmt;
  BindBuild(s, record, 1, /*with_spec=*/false);
  RETURN_IF_ERROR(s.Run());
  if (sqlite3_changes(db_) != 1) {
    return absl::NotFoundError("build " + record.id + " is not in the journal");
  }
  return absl::OkStatus();
}

absl::StatusOr<BuildRecord> BuildJournal::Get(const std::string& id) {
  Access lock(this);
  ASSIGN_OR_RETURN(Statement * stmt, Prepared("SELECT " LONGSHORE_BUILD_COLUMNS
                                              " FROM builds WHERE id=?1"));
  ResetOnExit reset(stmt);
  stmt->Bind(1, id);
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return absl::NotFoundError("build " + id + " not found");
  return ReadBuildRow(*stmt);
}

absl::StatusOr<longshore::v1::BuildSpec> BuildJournal::GetSpec(
    const std::string& id) {
  Access lock(this);
  ASSIGN_OR_RETURN(Statement * stmt,
                   Prepared("SELECT spec FROM builds WHERE id=?1"));
  ResetOnExit reset(stmt);
  stmt->Bind(1, id);
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return absl::NotFoundError("build " + id + " not found");
  longshore::v1::BuildSpec spec;
  if (!spec.ParseFromString(stmt->Blob(0))) {
    return absl::DataLossError("journal: spec of build " + id +
                               " does not parse");
  }
  return spec;
}

absl::StatusOr<std::vector<BuildRecord>> BuildJournal::List(
    const std::vector<BuildState>& states, int limit,
    const std::string& submitter, int64_t since_ns) {
  Access lock(this);
  std::vector<std::string> conditions;
  if (!states.empty()) {
    std::vector<std::string> values;
    for (BuildState st : states) values.push_back(std::to_string(st));
    conditions.push_back(
        absl::StrCat("state IN (", absl::StrJoin(values, ","), ")"));
  }
  // Bound, not spliced: a submitter name is the caller's.
  if (!submitter.empty()) conditions.push_back("submitter = ?1");
  if (since_ns > 0) {
    conditions.push_back(absl::StrCat("created_ns >= ", since_ns));
  }
  std::string sql = absl::StrCat(
      "SELECT ", kBuildColumns, " FROM builds",
      conditions.empty() ? "" : " WHERE ", absl::StrJoin(conditions, " AND "),
      " ORDER BY ord DESC LIMIT ", limit > 0 ? limit : -1);
  return QueryBuilds(db_, sql, submitter);
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
BuildJournal::BuildSubmitters() {
  Access lock(this);
  Statement s(db_, "SELECT id, submitter FROM builds");
  RETURN_IF_ERROR(s.status());
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.emplace_back(s.Text(0), s.Text(1));
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>>
BuildJournal::OutputBytesBySubmitter() {
  Access lock(this);
  Statement s(db_,
              "SELECT b.submitter, SUM(o.size) FROM outputs o JOIN builds b "
              "ON o.build_id = b.id GROUP BY b.submitter");
  RETURN_IF_ERROR(s.status());
  std::vector<std::pair<std::string, int64_t>> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.emplace_back(s.Text(0), s.Int(1));
  }
  return out;
}

absl::Status BuildJournal::BackfillSubmitters() {
  std::vector<std::pair<std::string, std::string>> rows;
  {
    Statement s(db_, "SELECT id, spec FROM builds");
    RETURN_IF_ERROR(s.status());
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      longshore::v1::BuildSpec spec;
      if (spec.ParseFromString(s.Blob(1)) && !spec.submitter().empty()) {
        rows.emplace_back(s.Text(0), spec.submitter());
      }
    }
  }
  for (const auto& [id, submitter] : rows) {
    Statement s(db_, "UPDATE builds SET submitter=?2 WHERE id=?1");
    RETURN_IF_ERROR(s.status());
    s.Bind(1, id);
    s.Bind(2, submitter);
    RETURN_IF_ERROR(s.Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BuildRecord>> BuildJournal::ListActive() {
  Access lock(this);
  std::string sql = absl::StrCat(
      "SELECT ", kBuildColumns, " FROM builds WHERE state IN (",
      static_cast<int>(longshore::v1::QUEUED), ",",
      static_cast<int>(longshore::v1::RUNNING), ") ORDER BY ord ASC");
  return QueryBuilds(db_, sql);
}

absl::Status BuildJournal::AppendEvent(const std::string& build_id,
                                       const BuildEvent& event) {
  Access lock(this);
  ASSIGN_OR_RETURN(
      Statement * stmt,
      Prepared("INSERT INTO events (build_id, seq, data) VALUES (?1, ?2, ?3)"));
  ResetOnExit reset(stmt);
  Statement& s = *stmt;
  s.Bind(1, build_id);
  s.Bind(2, static_cast<int64_t>(event.sequence()));
  s.BindBlob(3, event.SerializeAsString());
  absl::Status st = s.Run();
  if (absl::IsAlreadyExists(st)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "event ", event.sequence(), " of build ", build_id, " already exists"));
  }
  return st;
}

absl::StatusOr<std::vector<BuildEvent>> BuildJournal::ReadEvents(
    const std::string& build_id, uint64_t after_sequence, int limit) {
  Access lock(this);
  ASSIGN_OR_RETURN(Statement * stmt,
                   Prepared("SELECT data FROM events WHERE build_id=?1 AND "
                            "seq>?2 ORDER BY seq ASC LIMIT ?3"));
  ResetOnExit reset(stmt);
  Statement& s = *stmt;
  s.Bind(1, build_id);
  s.Bind(2, static_cast<int64_t>(after_sequence));
  s.Bind(3, static_cast<int64_t>(limit > 0 ? limit : -1));
  std::vector<BuildEvent> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    BuildEvent ev;
    if (!ev.ParseFromString(s.Blob(0))) {
      return absl::DataLossError("journal: an event of build " + build_id +
                                 " does not parse");
    }
    out.push_back(std::move(ev));
  }
  return out;
}

absl::StatusOr<BuildEvent> BuildJournal::LastEvent(
    const std::string& build_id) {
  Access lock(this);
  ASSIGN_OR_RETURN(Statement * stmt,
                   Prepared("SELECT data FROM events WHERE build_id=?1 ORDER "
                            "BY seq DESC LIMIT 1"));
  ResetOnExit reset(stmt);
  Statement& s = *stmt;
  s.Bind(1, build_id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("build " + build_id + " has no events");
  BuildEvent ev;
  if (!ev.ParseFromString(s.Blob(0))) {
    return absl::DataLossError("journal: an event of build " + build_id +
                               " does not parse");
  }
  return ev;
}

absl::Status BuildJournal::PutOutput(const std::string& build_id,
                                     const OutputRecord& output) {
  Access lock(this);
  ASSIGN_OR_RETURN(Statement * stmt,
                   Prepared("INSERT OR REPLACE INTO outputs (build_id, idx, "
                            "attempt, digest, size) VALUES (?1, ?2, ?3, ?4, "
                            "?5)"));
  ResetOnExit reset(stmt);
  Statement& s = *stmt;
  s.Bind(1, build_id);
  s.Bind(2, static_cast<int64_t>(output.index));
  s.Bind(3, static_cast<int64_t>(output.attempt));
  s.Bind(4, output.digest);
  s.Bind(5, output.size);
  return s.Run();
}

absl::StatusOr<std::vector<OutputRecord>> BuildJournal::ListOutputs(
    const std::string& build_id) {
  Access lock(this);
  ASSIGN_OR_RETURN(Statement * stmt,
                   Prepared("SELECT idx, attempt, digest, size FROM outputs "
                            "WHERE build_id=?1 ORDER BY idx ASC"));
  ResetOnExit reset(stmt);
  Statement& s = *stmt;
  s.Bind(1, build_id);
  std::vector<OutputRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    OutputRecord o;
    o.index = static_cast<int>(s.Int(0));
    o.attempt = static_cast<int>(s.Int(1));
    o.digest = s.Text(2);
    o.size = s.Int(3);
    out.push_back(std::move(o));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> BuildJournal::FinishedBefore(
    int64_t finished_before_ns, int limit) {
  Access lock(this);
  const std::string sql =
      absl::StrCat("SELECT id FROM builds WHERE state IN (",
                   static_cast<int>(longshore::v1::SUCCEEDED), ",",
                   static_cast<int>(longshore::v1::FAILED), ",",
                   static_cast<int>(longshore::v1::CANCELLED),
                   ") AND finished_ns < ?1 ORDER BY finished_ns ASC LIMIT ?2");
  Statement s(db_, sql.c_str());
  RETURN_IF_ERROR(s.status());
  s.Bind(1, finished_before_ns);
  s.Bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));
  std::vector<std::string> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ids.push_back(s.Text(0));
  }
  return ids;
}

absl::Status BuildJournal::DeleteBuilds(const std::vector<std::string>& ids) {
  Access lock(this);
  const bool own_transaction =
      batch_owner_.load() != std::this_thread::get_id();
  if (own_transaction) RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status st = [&]() -> absl::Status {
    for (const char* sql : {"DELETE FROM events WHERE build_id=?1",
                            "DELETE FROM outputs WHERE build_id=?1",
                            "DELETE FROM builds WHERE id=?1"}) {
      Statement del(db_, sql);
      RETURN_IF_ERROR(del.status());
      for (const std::string& id : ids) {
        del.Bind(1, id);
        RETURN_IF_ERROR(del.Run());
        del.Reset();
      }
    }
    return absl::OkStatus();
  }();
  if (!own_transaction) return st;
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

absl::StatusOr<std::set<std::string>> BuildJournal::ContextDigestsInUse() {
  Access lock(this);
  Statement s(db_, "SELECT id, spec FROM builds");
  RETURN_IF_ERROR(s.status());
  std::set<std::string> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    longshore::v1::BuildSpec spec;
    if (!spec.ParseFromString(s.Blob(1))) {
      return absl::DataLossError("journal: spec of build " + s.Text(0) +
                                 " does not parse");
    }
    out.insert(spec.context_digest());
  }
  return out;
}

absl::Status BuildJournal::SetWorkerDrained(const std::string& worker_id,
                                            bool drained) {
  Access lock(this);
  ASSIGN_OR_RETURN(
      Statement * stmt,
      Prepared(drained ? "INSERT OR IGNORE INTO drained_workers "
                         "(id) VALUES (?1)"
                       : "DELETE FROM drained_workers WHERE id=?1"));
  ResetOnExit reset(stmt);
  stmt->Bind(1, worker_id);
  return stmt->Run();
}

absl::StatusOr<std::vector<std::string>> BuildJournal::DrainedWorkers() {
  Access lock(this);
  ASSIGN_OR_RETURN(Statement * stmt,
                   Prepared("SELECT id FROM drained_workers ORDER BY id"));
  ResetOnExit reset(stmt);
  std::vector<std::string> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    out.push_back(stmt->Text(0));
  }
  return out;
}

}  // namespace longshore::scheduler
