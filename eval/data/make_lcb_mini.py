"""Writes `lcb_mini.jsonl` (+ `lcb_mini_solutions.json`): a handful of problems written for this
project in LiveCodeBench's `code_generation_lite` schema, private tests encoded as LCB does
(base64(zlib(pickle(json)))). Expected outputs are computed by the reference solutions, so the
sample is self-consistent. Rerun to regenerate: `python eval/data/make_lcb_mini.py`."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from xcoder.eval.lcb_data import encode_private_tests  # noqa: E402

LABEL = "\n\n(xcoder mini sample: written for this project, not a LiveCodeBench problem.)"

STDIN = [
    dict(question_id="xcmini_sum", question_title="Sum of Numbers", platform="atcoder", difficulty="easy",
         contest_date="2024-09-14T00:00:00",
         question_content="You are given N integers A_1, ..., A_N. Print their sum.\n\nInput\nN\nA_1 ... A_N\n\n"
                          "Output\nPrint the sum.\n\nConstraints\n1 <= N <= 100, |A_i| <= 10^9",
         solution="n = int(input())\na = list(map(int, input().split()))\nprint(sum(a))\n",
         inputs=["3\n1 2 3\n", "1\n-5\n", "5\n1000000000 1000000000 1000000000 1000000000 1000000000\n",
                 "4\n0 0 0 7\n"]),
    dict(question_id="xcmini_palin", question_title="Palindrome Queries", platform="codeforces", difficulty="medium",
         contest_date="2024-12-05T00:00:00",
         question_content="T test cases follow; each is a lowercase string s. For each, print YES if s reads the same "
                          "backwards, otherwise NO.\n\nInput\nT\ns_1\n...\ns_T\n\nOutput\nT lines.",
         solution="import sys\ndata = sys.stdin.read().split()\nt = int(data[0])\n"
                  "print('\\n'.join('YES' if s == s[::-1] else 'NO' for s in data[1:1 + t]))\n",
         inputs=["3\naba\nab\nz\n", "2\nabba\nabcab\n", "4\nracecar\nrace\nxx\nxyx\n"]),
    dict(question_id="xcmini_mean", question_title="Mean Value", platform="atcoder", difficulty="hard",
         contest_date="2025-03-08T00:00:00",
         question_content="Given N integers, print their arithmetic mean. Your answer is judged exactly after "
                          "decimal normalisation, so print it exactly (e.g. 2.5).\n\nInput\nN\nA_1 ... A_N",
         solution="from fractions import Fraction\nn = int(input())\na = list(map(int, input().split()))\n"
                  "m = Fraction(sum(a), n)\n"
                  "print(m.numerator if m.denominator == 1 else f'{float(m):.10f}'.rstrip('0'))\n",
         inputs=["2\n2 3\n", "4\n1 1 1 1\n", "4\n1 2 3 5\n", "5\n-1 -2 -3 -4 -6\n"]),
    dict(question_id="xcmini_old", question_title="Old Problem", platform="atcoder", difficulty="easy",
         contest_date="2023-11-01T00:00:00",
         question_content="Print the given integer doubled.\n\nInput\nX",
         solution="print(2 * int(input()))\n", inputs=["4\n", "0\n", "-7\n"]),
]

CALL = [
    dict(question_id="xcmini_two_largest", question_title="two-largest-sum", platform="leetcode", difficulty="easy",
         contest_date="2024-10-20T00:00:00", func_name="twoLargestSum",
         question_content="Given an integer array nums with at least two elements, return the sum of its two largest "
                          "elements.\n\nExample 1:\nInput: nums = [1,5,3]\nOutput: 8",
         starter_code="class Solution:\n    def twoLargestSum(self, nums: List[int]) -> int:\n        ",
         solution="class Solution:\n    def twoLargestSum(self, nums: List[int]) -> int:\n"
                  "        a = sorted(nums)\n        return a[-1] + a[-2]\n",
         inputs=[[[1, 5, 3]], [[2, 2]], [[-1, -7, -3, 0]], [[10, 9, 8, 7, 100]]]),
    dict(question_id="xcmini_window_max", question_title="window-maximum-sums", platform="leetcode",
         difficulty="medium",
         contest_date="2025-03-22T00:00:00", func_name="windowSums",
         question_content="Given nums and an integer k, return the list of sums of every contiguous window of length "
                          "k, in order.\n\nExample 1:\nInput: nums = [1,2,3,4], k = 2\nOutput: [3,5,7]",
         starter_code="class Solution:\n    def windowSums(self, nums: List[int], k: int) -> List[int]:\n        ",
         solution="class Solution:\n    def windowSums(self, nums: List[int], k: int) -> List[int]:\n"
                  "        pre = list(accumulate(nums, initial=0))\n"
                  "        return [pre[i + k] - pre[i] for i in range(len(nums) - k + 1)]\n",
         inputs=[[[1, 2, 3, 4], 2], [[5], 1], [[3, -1, 4, 1, 5], 3], [[0, 0, 0], 3]]),
    dict(question_id="xcmini_inversions", question_title="count-inversions", platform="leetcode", difficulty="hard",
         contest_date="2025-04-12T00:00:00", func_name="countInversions",
         question_content="Return the number of pairs (i, j) with i < j and nums[i] > nums[j].\n\nConstraints:\n"
                          "1 <= nums.length <= 10^5",
         starter_code="class Solution:\n    def countInversions(self, nums: List[int]) -> int:\n        ",
         solution="class Solution:\n    def countInversions(self, nums: List[int]) -> int:\n"
                  "        def sort(a):\n            if len(a) <= 1:\n                return a, 0\n"
                  "            m = len(a) // 2\n            l, x = sort(a[:m])\n            r, y = sort(a[m:])\n"
                  "            out, i, j, c = [], 0, 0, x + y\n            while i < len(l) and j < len(r):\n"
                  "                if l[i] <= r[j]:\n                    out.append(l[i]); i += 1\n"
                  "                else:\n                    out.append(r[j]); j += 1; c += len(l) - i\n"
                  "            return out + l[i:] + r[j:], c\n        return sort(nums)[1]\n",
         inputs=[[[2, 1]], [[1, 2, 3]], [[3, 2, 1]], [random.Random(7).sample(range(20000), 20000)]]),
]


def run_stdin(code: str, text: str) -> str:
    import contextlib
    import io

    out = io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<ref>", "exec"),
                 {"__name__": "__main__", "input": lambda: sys.stdin.readline().rstrip("\n")})
    finally:
        sys.stdin = old
    return out.getvalue()


def run_call(code: str, fn: str, args: list) -> str:
    from itertools import accumulate

    scope: dict = {"List": list, "accumulate": accumulate}
    exec(code, scope)
    return json.dumps(getattr(scope["Solution"](), fn)(*args))


def main() -> None:
    rows, solutions = [], {}
    for p in STDIN:
        tests = [{"input": t, "output": run_stdin(p["solution"], t), "testtype": "stdin"} for t in p["inputs"]]
        rows.append(dict(question_title=p["question_title"], question_content=p["question_content"] + LABEL,
                         platform=p["platform"], question_id=p["question_id"], contest_id="xcoder-mini",
                         contest_date=p["contest_date"], starter_code="", difficulty=p["difficulty"],
                         public_test_cases=json.dumps(tests[:1]), private_test_cases=encode_private_tests(tests[1:]),
                         metadata="{}"))
        solutions[p["question_id"]] = p["solution"]
    for p in CALL:
        tests = [{"input": "\n".join(json.dumps(a) for a in args),
                  "output": run_call(p["solution"], p["func_name"], args),
                  "testtype": "functional"} for args in p["inputs"]]
        rows.append(dict(question_title=p["question_title"], question_content=p["question_content"] + LABEL,
                         platform=p["platform"], question_id=p["question_id"], contest_id="xcoder-mini",
                         contest_date=p["contest_date"], starter_code=p["starter_code"], difficulty=p["difficulty"],
                         public_test_cases=json.dumps(tests[:1]), private_test_cases=encode_private_tests(tests[1:]),
                         metadata=json.dumps({"func_name": p["func_name"]})))
        solutions[p["question_id"]] = p["solution"]
    (HERE / "lcb_mini.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (HERE / "lcb_mini_solutions.json").write_text(json.dumps(solutions, indent=1) + "\n")
    print(f"wrote {len(rows)} problems")


if __name__ == "__main__":
    main()
