"""What a person reads in their account's history: each audited action in words, the device a
session runs on by name (not its raw User-Agent), and where it came from."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import ip_address

from ua_parser import parse

NAMES = {
    "auth.login_ok": "登录成功",
    "auth.password_ok": "密码验证通过",
    "auth.login_failed": "登录失败",
    "auth.locked": "账号临时锁定",
    "auth.refused_locked": "锁定期间尝试登录",
    "auth.logout": "退出登录",
    "auth.logout_everywhere": "全部设备退出",
    "auth.totp_enabled": "启用两步验证",
    "auth.second_factor_ok": "两步验证通过",
    "auth.second_factor_failed": "两步验证失败",
    "auth.sms_code_sent": "发送短信验证码",
    "auth.reconfirmed": "再次验证身份",
    "auth.cross_device_confirmed": "扫码确认电脑登录",
    "auth.cross_device_refused": "拒绝电脑扫码登录",
    "auth.federated_login": "经上级统一身份认证登录",
    "account.registered": "注册账号",
    "account.password_changed": "修改密码",
    "account.password_change_refused": "修改密码失败",
    "agent.authorised": "授权经办人",
    "agent.revoked": "撤销经办人",
    "identity.switched": "切换办事身份",
    "identity.dropped": "企业身份失效",
    "identity.claims_released": "向部门系统提供实名信息",
    "role.granted": "授予角色",
    "role.revoked": "撤销角色",
    "enterprise.representative_changed": "变更法定代表人",
    "oidc.token_issued": "登录部门系统",
    "oidc.token_refreshed": "部门系统续期登录",
    "oidc.token_revoked": "吊销访问令牌",
    "oidc.consent_given": "同意部门系统授权",
    "oidc.consent_refused": "拒绝部门系统授权",
    "oidc.consent_withdrawn": "撤回部门系统授权",
    "oidc.code_reused": "授权码被重复使用（已吊销）",
    "oidc.refresh_reused": "刷新令牌被重复使用（已吊销）",
    "oidc.backchannel_logout": "通知部门系统退出",
    "consent.given": "授权部门使用敏感信息",
    "consent.withdrawn": "撤回敏感信息授权",
    "services.application_submitted": "提交办件申请",
    "services.correction_answered": "提交补正材料",
    "services.offer_accepted": "领取免申即享服务",
    "services.rated": "评价办件（好差评）",
    "services.rating_appealed": "对差评提出申诉",
    "services.appeal_decided": "处理差评申诉",
    "services.rectification_fixed": "完成差评整改",
    "services.licence_issued": "签发电子证照",
    "services.licence_revoked": "注销电子证照",
    "services.item_changed": "修改事项",
    "services.case_accept": "受理办件",
    "services.case_not_accept": "不予受理办件",
    "services.case_review": "开始审查办件",
    "services.case_correct": "要求补正",
    "services.case_grant": "准予许可",
    "services.case_refuse": "不予许可",
    "services.case_finish": "办结办件",
    "data.loaded": "加载数据",
    "data.resource_registered": "登记数据资源",
    "data.schema_changed": "修改数据资源结构",
    "data.read": "查阅数据",
    "client.registered": "登记接入系统",
    "client.disabled": "停用接入系统",
}
PREFIXES = {"services.case_": "处理办件", "data.": "数据操作", "oidc.": "部门系统登录"}


def event_name(action: str) -> str:
    """The action in words; one the list does not know is named by its area, never by code."""
    if action in NAMES:
        return NAMES[action]
    for prefix, name in PREFIXES.items():
        if action.startswith(prefix):
            return name
    return "其他操作"


def shown_address(address: str | None) -> str:
    """An address as people read it: an IP address, or nothing (the demo and the command line
    record what they are instead)."""
    if not address:
        return "—"
    try:
        return str(ip_address(address))
    except ValueError:
        return {"demo": "演示数据", "cli": "命令行"}.get(address, "—")


BROWSERS = {
    "WeChat Browser": "微信",
    "Mobile Safari": "Safari",
    "HeadlessChrome": "Chrome",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile WebView": "应用内浏览器",
    "MiuiBrowser": "小米浏览器",
    "HuaweiBrowser": "华为浏览器",
    "UC Browser": "UC 浏览器",
    "QQ Browser": "QQ 浏览器",
    "QQ Browser Mobile": "QQ 浏览器",
}


@lru_cache(maxsize=512)
def device_name(user_agent: str | None) -> str:
    """`iPhone · Safari`, `Huawei P60 · 微信`, `Windows · Edge`: what a person recognises."""
    if not user_agent:
        return "未知设备"
    found = parse(user_agent)
    browser = found.user_agent.family if found.user_agent else None
    browser = BROWSERS.get(browser or "", browser)
    device = found.device
    where: str | None
    if device is not None and device.brand and device.model and device.brand != "Generic":
        model = device.model
        plain = model.startswith(device.brand) or device.brand == "Apple"
        where = model if plain else f"{device.brand} {model}"
    else:
        where = found.os.family if found.os else None
    parts = [part for part in (where, browser) if part and part != "Other"]
    return " · ".join(parts) or "未知设备"
