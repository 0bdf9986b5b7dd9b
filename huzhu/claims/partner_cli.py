"""``huzhu partner create`` and ``huzhu partner sign`` (INTERFACES.md §2, §3).

``huzhu partner create NAME --org CODE [--method hmac|sm2] [--sm2-public-key HEX]
[--scopes settle,cancel,batch] [--ip CIDR ...]`` registers a settlement partner and prints exactly
two lines, ``partner_id=…`` and ``key=…`` (the HMAC key in hex, shown this once; empty for an SM2
partner, which signs with its own private key). Exit 2 on unusable input, with every problem on
standard error.

``huzhu partner sign --key HEX --method POST --path P --body FILE`` prints the four request
headers for that exact body (``-`` reads standard input), e.g. for curl; ``--sm2-private-key``
signs as an SM2 partner instead. It needs no database.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_UNUSABLE = 2


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_partner_create(args: argparse.Namespace) -> int:
    from huzhu.claims.models import SignatureMethod
    from huzhu.claims.partners import create_partner
    from huzhu.core.context import RequestInfo, current_request
    from huzhu.core.errors import InvalidInput
    from huzhu.orgs.models import Union

    union = Union.objects.filter(code=args.org.strip().upper()).first()
    if union is None:
        _err(f"找不到组织代码为 {args.org} 的工会（应为统一社会信用代码或行政区划代码）")
        return EXIT_UNUSABLE
    method = args.method or (SignatureMethod.SM2 if args.sm2_public_key else SignatureMethod.HMAC)
    scopes = [s for s in args.scopes.replace("，", ",").split(",") if s.strip()]
    token = current_request.set(RequestInfo(channel="cli"))
    try:
        partner, key = create_partner(
            acting_user=None,
            name=args.name,
            organisation=union,
            method=method,
            scopes=scopes,
            ip_allowlist=args.ip or [],
            sm2_public_key=args.sm2_public_key,
        )
    except InvalidInput as exc:
        for error in exc.errors:
            _err(f"{error.field}：{error.message}")
        return EXIT_UNUSABLE
    finally:
        current_request.reset(token)
    print(f"partner_id={partner.partner_id}")
    print(f"key={key}")
    if not key:
        _err("SM2 合作方以其 SM2 私钥签名，平台只保存其公钥，没有 HMAC 密钥。")
    return EXIT_OK


def cmd_partner_sign(args: argparse.Namespace) -> int:
    from huzhu.claims.partner_signing import is_hex, sign_hmac, sign_sm2, string_to_sign

    if bool(args.key) == bool(args.sm2_private_key):
        _err("请给出 --key（HMAC 密钥）或 --sm2-private-key（SM2 私钥）之一")
        return EXIT_UNUSABLE
    if args.key and not is_hex(args.key, 64):
        _err("--key 应为 64 位十六进制（32 字节密钥）")
        return EXIT_UNUSABLE
    if args.sm2_private_key and not is_hex(args.sm2_private_key, 64):
        _err("--sm2-private-key 应为 64 位十六进制")
        return EXIT_UNUSABLE
    if not args.path.startswith("/") or "?" in args.path:
        _err("--path 应为以 / 开头、不含主机和查询串的路径，如 /api/v1/settlements")
        return EXIT_UNUSABLE
    try:
        body = sys.stdin.buffer.read() if args.body == "-" else Path(args.body).read_bytes()
    except OSError as exc:
        _err(f"无法读取请求体文件 {args.body}：{exc.strerror or exc}")
        return EXIT_UNUSABLE
    timestamp = args.timestamp or str(int(time.time()))
    nonce = args.nonce or secrets.token_hex(16)
    message = string_to_sign(timestamp, nonce, args.method, args.path, body)
    if args.key:
        signature = sign_hmac(args.key, message)
    else:
        signature = sign_sm2(args.sm2_private_key, message)
    if args.partner_id:
        print(f"X-Partner-Id: {args.partner_id}")
    print(f"X-Timestamp: {timestamp}")
    print(f"X-Nonce: {nonce}")
    print(f"X-Signature: {signature}")
    return EXIT_OK


def add_subcommands(sub: Any, wrap: Callable[[Callable[[argparse.Namespace], int]], Any]) -> None:
    partner = sub.add_parser("partner", help="一站式结算合作方").add_subparsers(
        dest="partner_cmd", required=True
    )
    p = partner.add_parser("create", help="登记结算合作方，输出 partner_id 与 key 两行")
    p.add_argument("name", help="合作方名称，如“长沙市医疗保障事务中心”")
    p.add_argument(
        "--org", required=True, help="所属工会的组织代码（统一社会信用代码或行政区划代码）"
    )
    p.add_argument(
        "--method", choices=["hmac", "sm2"], help="签名方式（默认 hmac；给出 SM2 公钥时为 sm2）"
    )
    p.add_argument("--sm2-public-key", help="SM2 公钥（04 开头 130 位十六进制）")
    p.add_argument(
        "--scopes", default="settle,cancel", help="权限范围，逗号分隔：settle,cancel,batch"
    )
    p.add_argument("--ip", action="append", metavar="CIDR", help="允许的来源地址或网段，可重复")
    p.set_defaults(func=wrap(cmd_partner_create))

    p = partner.add_parser("sign", help="为一个请求生成签名请求头（用于 curl 调试）")
    p.add_argument("--key", help="HMAC 密钥（64 位十六进制）")
    p.add_argument("--sm2-private-key", help="SM2 私钥（64 位十六进制），代替 --key")
    p.add_argument("--partner-id", help="合作方编号（给出时一并输出 X-Partner-Id）")
    p.add_argument("--method", default="POST", help="HTTP 方法（默认 POST）")
    p.add_argument("--path", required=True, help="请求路径，如 /api/v1/settlements")
    p.add_argument("--body", required=True, help="请求体文件（原样签名；- 为标准输入）")
    p.add_argument("--timestamp", help="Unix 时间戳（默认当前时间）")
    p.add_argument("--nonce", help="随机数（默认随机生成）")
    p.set_defaults(func=cmd_partner_sign)
