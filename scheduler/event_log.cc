#include "scheduler/event_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace longshore::scheduler {

using longshore::v1::BuildEvent;

absl::StatusOr<EventLog::StreamState*> EventLog::StateLocked(
    const std::string& build_id) {
  auto it = streams_.find(build_id);
  if (it != streams_.end()) return &it->second;
  // The journal is read without mu_: the thread that holds the journal for a
  // batch may be waiting for mu_ to append (lock order: journal, then log).
  mu_.Unlock();
  absl::StatusOr<BuildEvent> last = journal_->LastEvent(build_id);
  mu_.Lock();
  it = streams_.find(build_id);
  if (it != streams_.end()) return &it->second;  // Appended meanwhile.
  StreamState state;
  if (last.ok()) {
    state.last_sequence = last->sequence();
    state.finished = last->has_build_finished();
  } else if (!absl::IsNotFound(last.status())) {
    return last.status();
  }
  return &streams_.emplace(build_id, state).first->second;
}

absl::Status EventLog::SetLogDir(const std::string& dir) {
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  log_dir_ = dir;
  return absl::OkStatus();
}

std::string EventLog::LogPath(const std::string& build_id) const {
  if (log_dir_.empty()) return "";
  return absl::StrCat(log_dir_, "/", build_id, ".log");
}

absl::StatusOr<int64_t> EventLog::AppendToLogFileLocked(
    const std::string& build_id, absl::string_view data) {
  const std::string path = LogPath(build_id);
  UniqueFd fd(
      open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat(%s)", path);
  for (size_t done = 0; done < data.size();) {
    ssize_t n = write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // A partial line stays in the file past every recorded length, where
      // nothing reads it.
      return ErrnoStatus(errno, "write(%s)", path);
    }
    done += static_cast<size_t>(n);
  }
  return static_cast<int64_t>(st.st_size);
}

absl::StatusOr<BuildEvent> EventLog::Append(const std::string& build_id,
                                            BuildEvent event) {
  // The journal first, then mu_: nobody holds mu_ while waiting for the
  // journal (StateLocked lets go of it), so this order cannot deadlock.
  BuildJournal::Batch batch(journal_);
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(StreamState * state, StateLocked(build_id));
  event.set_sequence(state->last_sequence + 1);
  event.set_time_unix_nanos(absl::ToUnixNanos(clock_()));
  if (!log_dir_.empty() && event.has_log() && !event.log().data().empty()) {
    // The bytes go to the build's file; the row says where they are.
    BuildEvent stored = event;
    ASSIGN_OR_RETURN(int64_t offset,
                     AppendToLogFileLocked(build_id, event.log().data()));
    stored.mutable_log()->clear_data();
    stored.mutable_log()->set_stored_offset(offset);
    stored.mutable_log()->set_stored_length(
        static_cast<int64_t>(event.log().data().size()));
    RETURN_IF_ERROR(journal_->AppendEvent(build_id, stored));
  } else {
    RETURN_IF_ERROR(journal_->AppendEvent(build_id, event));
  }
  state->last_sequence = event.sequence();
  state->finished = event.has_build_finished();
  // Waiters are woken by their own condition (their build's sequence moved),
  // evaluated as mu_ is released: watchers of other builds stay asleep.
  return event;
}

absl::StatusOr<std::vector<BuildEvent>> EventLog::Read(
    const std::string& build_id, uint64_t after_sequence, int limit) {
  ASSIGN_OR_RETURN(std::vector<BuildEvent> events,
                   journal_->ReadEvents(build_id, after_sequence, limit));
  UniqueFd fd;
  for (BuildEvent& ev : events) {
    if (!ev.has_log() || ev.log().stored_length() <= 0) continue;
    auto* log = ev.mutable_log();
    const int64_t length = log->stored_length();
    if (!fd) {
      const std::string path = LogPath(build_id);
      fd = UniqueFd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return ErrnoStatus(errno, "open(%s)", path);
    }
    std::string data(static_cast<size_t>(length), '\0');
    int64_t got = 0;
    while (got < length) {
      ssize_t n = pread(fd.get(), data.data() + got, length - got,
                        log->stored_offset() + got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += n;
    }
    if (got < length) {
      // The file lost its tail (a crash before the bytes reached the disk).
      data.resize(static_cast<size_t>(got));
      absl::StrAppend(&data, "\n[longshore] ", length - got,
                      " bytes of this output were lost\n");
    }
    log->set_data(std::move(data));
    log->clear_stored_offset();
    log->clear_stored_length();
  }
  return events;
}

absl::StatusOr<bool> EventLog::FinishedAfter(const std::string& build_id,
                                             uint64_t after_sequence) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(StreamState * state, StateLocked(build_id));
  return state->finished && state->last_sequence <= after_sequence;
}

bool EventLog::WaitForNewer(const std::string& build_id,
                            uint64_t after_sequence, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<StreamState*> state = StateLocked(build_id);
  if (!state.ok()) return false;
  if ((*state)->last_sequence > after_sequence) return true;
  const uint64_t generation = wake_generation_;
  auto newer = [this, &build_id, after_sequence,
                generation]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (wake_generation_ != generation) return true;
    auto it = streams_.find(build_id);
    return it == streams_.end() || it->second.last_sequence > after_sequence;
  };
  mu_.AwaitWithTimeout(absl::Condition(&newer), timeout);
  // Forget may have dropped the stream while the lock was released.
  absl::StatusOr<StreamState*> now = StateLocked(build_id);
  return now.ok() && (*now)->last_sequence > after_sequence;
}

void EventLog::WakeAll() {
  absl::MutexLock lock(&mu_);
  ++wake_generation_;
}

void EventLog::Forget(const std::vector<std::string>& build_ids) {
  absl::MutexLock lock(&mu_);
  for (const std::string& id : build_ids) {
    streams_.erase(id);
    if (!log_dir_.empty()) unlink(LogPath(id).c_str());
  }
  ++wake_generation_;
}

}  // namespace longshore::scheduler
