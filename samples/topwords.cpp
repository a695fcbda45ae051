// topwords: reads text on stdin and prints the N most frequent words (default
// 10; argv[1] sets N), most frequent first, ties in alphabetical order, as
// "count word". Words are runs of letters, lower-cased. Uses the C++ standard
// library: std::unordered_map, std::vector, std::sort, std::string, iostreams.
//
//   caplet run samples/topwords.cpp 5 < README.md
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

int main(int argc, char** argv) {
    std::size_t n = 10;
    if (argc > 1) {
        char* end = nullptr;
        long v = std::strtol(argv[1], &end, 10);
        if (*end != '\0' || v < 0) {
            std::cerr << "topwords: expected a count, got " << argv[1] << "\n";
            return 2;
        }
        n = static_cast<std::size_t>(v);
    }
    std::unordered_map<std::string, std::size_t> freq;
    std::string word;
    char c;
    auto flush = [&] {
        if (!word.empty()) ++freq[word];
        word.clear();
    };
    while (std::cin.get(c)) {
        unsigned char u = static_cast<unsigned char>(c);
        if (std::isalpha(u)) word.push_back(static_cast<char>(std::tolower(u)));
        else flush();
    }
    flush();
    std::vector<std::pair<std::string, std::size_t>> ranked(freq.begin(), freq.end());
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (ranked.size() > n) ranked.resize(n);
    for (const auto& [w, count] : ranked) std::cout << count << " " << w << "\n";
    return 0;
}
