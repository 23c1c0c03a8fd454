// threads.cpp — a threaded C++ workload for programs/run_programs.sh (case cxx): standard
// containers and strings built by four threads, objects handed from one thread to the next
// (so blocks are freed by threads that did not allocate them), and a digest per thread that
// must be identical with and without strata. Deterministic: no output depends on timing or
// on addresses.
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr int kThreads = 4;
constexpr int kItems = 4000;

// One mailbox per thread: thread i posts to thread (i + 1) % kThreads.
struct Mailbox {
  std::mutex lock;
  std::condition_variable ready;
  std::deque<std::unique_ptr<std::string>> items;
};

Mailbox boxes[kThreads];

std::uint64_t mix(std::uint64_t h, std::uint64_t v) { return (h ^ v) * 1099511628211ull; }

std::uint64_t hash_text(const std::string &s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = mix(h, c);
  return h;
}

std::uint64_t worker(int id) {
  std::map<std::string, std::vector<int>> index;
  std::unordered_map<int, std::string> names;
  std::uint64_t h = 14695981039346656037ull + static_cast<unsigned>(id);
  std::uint32_t x = 12345u + static_cast<unsigned>(id);
  Mailbox &out = boxes[(id + 1) % kThreads];
  Mailbox &in = boxes[id];
  for (int i = 0; i < kItems; i++) {
    x = x * 1103515245u + 12345u;
    std::string key = "k" + std::to_string(x % 5000) + std::string(x % 37, 'a' + id);
    index[key].push_back(i);
    names[i % 4096] = key + "/" + std::to_string(i);
    {
      std::lock_guard<std::mutex> guard(out.lock);
      out.items.push_back(std::make_unique<std::string>(key));
    }
    out.ready.notify_one();
    std::unique_ptr<std::string> gift;
    {
      std::unique_lock<std::mutex> guard(in.lock);
      in.ready.wait(guard, [&] { return !in.items.empty(); });
      gift = std::move(in.items.front());
      in.items.pop_front();
    }
    h = mix(h, hash_text(*gift));  // freed here, allocated by the previous thread
    if (i % 500 == 499) index.erase(index.begin(), std::next(index.begin(), index.size() / 2));
  }
  for (const auto &entry : index) h = mix(mix(h, hash_text(entry.first)), entry.second.size());
  for (int i = 0; i < 4096; i++) h = mix(h, hash_text(names[i]));
  return h;
}

}  // namespace

int main() {
  std::vector<std::uint64_t> digests(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) threads.emplace_back([&digests, i] { digests[i] = worker(i); });
  for (auto &t : threads) t.join();
  for (int i = 0; i < kThreads; i++)
    std::printf("thread %d digest %016llx\n", i, static_cast<unsigned long long>(digests[i]));
  return 0;
}
