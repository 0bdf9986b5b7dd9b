"""``huzhu receipt …`` commands (registered through ``huzhu.cli.EXTENSIONS``).

- ``huzhu receipt verify-xml FILE [--public-key PEM]``: check a receipt's signed XML original;
  exit 0 when the signature is valid, 1 when it is not, 2 when the file cannot be read.
- ``huzhu receipt public-key``: print the PEM public key that signs this deployment's receipts.
- ``huzhu receipt upload [--limit N] [--retry-failed]``: send the receipts and voids due to the
  finance department's platform (``receipt_upload``); prints one summary line; exit 0 when nothing
  was rejected or failed, 1 otherwise, 2 when the platform is not configured.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2


def cmd_verify_xml(args: argparse.Namespace) -> int:
    from huzhu.contributions.receipt_xml import check_receipt_xml, load_public_key_pem

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"无法读取文件 {path}：{exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    key = None
    if args.public_key:
        try:
            key = load_public_key_pem(Path(args.public_key).read_bytes())
        except (OSError, ValueError) as exc:
            print(f"无法读取公钥 {args.public_key}：{exc}", file=sys.stderr)
            return EXIT_UNUSABLE
    result = check_receipt_xml(data, key)
    name = f"票据 {result.code}-{result.number}" if result.code else str(path)
    if result.valid:
        print(f"{name}：{result.message}（密钥编号 {result.key_id}）")
        return EXIT_OK
    print(f"{name}：{result.message}", file=sys.stderr)
    return EXIT_FAILED


def cmd_public_key(args: argparse.Namespace) -> int:
    from huzhu.contributions.receipt_signing import public_key_pem

    sys.stdout.write(public_key_pem().decode("ascii"))
    return EXIT_OK


def cmd_upload(args: argparse.Namespace) -> int:
    from huzhu.contributions.receipt_upload import PlatformNotConfigured, upload_due

    if args.limit is not None and args.limit < 1:
        print("--limit 应为正整数", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        summary = upload_due(limit=args.limit, retry_failed=args.retry_failed)
    except PlatformNotConfigured as exc:
        from huzhu.contributions.receipt_upload import outstanding_count

        print(f"{'；'.join(exc.problems)}：{outstanding_count()} 条待上传", file=sys.stderr)
        return EXIT_UNUSABLE
    print(summary.line())
    return EXIT_OK if summary.ok else EXIT_FAILED


def add_subcommands(sub: Any, wrap: Callable[[Callable[[argparse.Namespace], int]], Any]) -> None:
    receipt = sub.add_parser("receipt", help="电子票据").add_subparsers(
        dest="receipt_cmd", required=True
    )
    p = receipt.add_parser("verify-xml", help="核验电子票据 XML 原件的电子签名")
    p.add_argument("file", help="票据 XML 文件")
    p.add_argument("--public-key", help="用指定的 PEM 公钥核验（默认本平台的签名公钥）")
    p.set_defaults(func=wrap(cmd_verify_xml))
    p = receipt.add_parser("public-key", help="输出本平台电子票据签名公钥（PEM）")
    p.set_defaults(func=wrap(cmd_public_key))
    p = receipt.add_parser("upload", help="将已开具、已作废的电子票据上传财政电子票据平台")
    p.add_argument("--limit", type=int, help="本次最多上传的条数（默认全部到期的）")
    p.add_argument("--retry-failed", action="store_true", help="把上传失败的任务重新排队并立即重试")
    p.set_defaults(func=wrap(cmd_upload))
