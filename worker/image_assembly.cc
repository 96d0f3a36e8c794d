#include "worker/image_assembly.h"

#include "common/status_macros.h"
#include "image/image_builder.h"

namespace longshore::worker {

image::OciConfig ToOciConfig(const ImageInputs& in) {
  image::OciConfig c;
  if (!in.created.empty()) c.created = in.created;
  c.author = in.config.maintainer;
  c.architecture = in.architecture;
  c.os = in.os;
  c.variant = in.variant;
  image::ContainerConfig& cc = c.config;
  const dockerfile::ImageConfig& d = in.config;
  cc.user = d.user;
  cc.env = d.env;
  cc.entrypoint = d.entrypoint;
  cc.cmd = d.cmd;
  cc.working_dir = d.working_dir;
  cc.labels = d.labels;
  for (const auto& [k, v] : in.labels) cc.labels[k] = v;
  cc.exposed_ports.assign(d.exposed_ports.begin(), d.exposed_ports.end());
  cc.volumes.assign(d.volumes.begin(), d.volumes.end());
  cc.stop_signal = d.stop_signal;
  if (d.healthcheck) {
    image::Healthcheck h;
    h.test = d.healthcheck->test;
    h.interval = d.healthcheck->interval_ns;
    h.timeout = d.healthcheck->timeout_ns;
    h.start_period = d.healthcheck->start_period_ns;
    h.start_interval = d.healthcheck->start_interval_ns;
    h.retries = d.healthcheck->retries;
    cc.healthcheck = h;
  }
  cc.shell = d.shell;
  cc.on_build = d.on_build;
  c.rootfs.type = "layers";
  c.rootfs.diff_ids = in.diff_ids;
  c.history = in.history;
  return c;
}

dockerfile::ImageConfig FromOciConfig(const image::OciConfig& c) {
  dockerfile::ImageConfig d;
  const image::ContainerConfig& cc = c.config;
  d.user = cc.user;
  d.env = cc.env;
  d.entrypoint = cc.entrypoint;
  d.entrypoint_set = !cc.entrypoint.empty();
  d.cmd = cc.cmd;
  d.cmd_set = !cc.cmd.empty();
  d.working_dir = cc.working_dir;
  d.labels = cc.labels;
  d.exposed_ports.insert(cc.exposed_ports.begin(), cc.exposed_ports.end());
  d.volumes.insert(cc.volumes.begin(), cc.volumes.end());
  d.stop_signal = cc.stop_signal;
  if (cc.healthcheck) {
    dockerfile::Healthcheck h;
    h.test = cc.healthcheck->test;
    h.interval_ns = cc.healthcheck->interval;
    h.timeout_ns = cc.healthcheck->timeout;
    h.start_period_ns = cc.healthcheck->start_period;
    h.start_interval_ns = cc.healthcheck->start_interval;
    h.retries = cc.healthcheck->retries;
    d.healthcheck = h;
  }
  d.shell = cc.shell;
  d.on_build = cc.on_build;
  d.maintainer = c.author;
  return d;
}

absl::StatusOr<image::Descriptor> StoreImage(image::ContentStore* store,
                                             const ImageInputs& in) {
  ASSIGN_OR_RETURN(image::WrittenImage written,
                   image::WriteImage(*store, ToOciConfig(in), in.layers));
  return written.manifest;
}

}  // namespace longshore::worker
