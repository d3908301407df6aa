// Chinese by default, English by the switch; the choice is remembered.
const zh = {
  title: '网格化管理指挥中心',
  login: '登录', logout: '退出', username: '用户名', password: '密码',
  login_failed: '用户名或密码错误', login_limited: '尝试过多，请稍后再试',
  session_expired: '登录已过期，请重新登录',
  offline: '与指挥中心的连接已断开，正在重连…',
  today_new: '今日新增', today_handled: '今日办结', overdue: '超期', on_time: '按期办结率(30天)',
  satisfaction: '满意度(30天)', hotline: '12345工单', on_duty: '在岗网格员',
  feed: '实时动态', ranking: '红旗网格', trend7: '近7天趋势', trend30: '近30天趋势',
  by_street: '各街道案件', reported: '上报', no_street: '辖区外或无位置', closed: '结案', color_by: '网格着色',
  fig_open: '未结案件', fig_overdue: '超期案件', fig_satisfaction: '满意度', fig_coverage: '今日巡查覆盖',
  case: '案件', category: '类别', status: '状态', address: '地址', description: '描述',
  deadline: '期限', remaining: '剩余', overdue_by: '已超期', timeline: '处置过程', photos: '照片',
  grid: '网格', chain: '所属', open_cases: '未结案件', workers: '网格员', no_cases: '暂无未结案件',
  close: '关闭', note: '备注', department: '部门', result: '处置结果', rating: '评分',
  act_register: '立案', act_reject: '不予立案', act_dispatch: '派遣', act_handle: '处置',
  act_verify: '核查', act_send_back: '退回', act_close: '结案', act_evaluate: '回访评价',
  st_reported: '待立案', st_registered: '已立案', st_dispatched: '已派遣', st_handled: '已处置',
  st_verified: '已核查', st_closed: '已结案', st_evaluated: '已评价', st_rejected: '不予立案',
  alert: '告警', alert_outside: '离开网格', alert_silent: '设备失联', alert_sos: '紧急求助', alert_overdue: '超期升级',
  alert_escalate: '超期升级', units: '件', lang: 'EN', score: '得分',
  worker: '网格员', last_fix: '最后定位', speed: '速度', none: '无',
  replay: '回放', live: '实时',
  all: '全部',
  people: '人口', households: '户数', buildings: '房屋', organisations: '单位',
  load: '载入', area: '区域查询', changes: '条变更', thinned: '已抽稀', bad_window: '时间段无效', nobody: '该时段区域内无人',
  distance: '里程', fixes: '定位点', stops: '停留', playback: '轨迹回放', follow: '跟随', coverage: '今日巡查覆盖',
  act_report: '上报', act_escalate: '超期升级', act_hotline: '12345转办', act_import: '导入',
  video_wall: '视频墙', wall_layout: '分屏', wall_tour: '轮巡', cam_count: '路', street: '街道',
  camera: '摄像头', cameras: '可见摄像头', cam_heading: '朝向', cam_fov: '视角', cam_range: '距离',
  cam_snapshot: '抓拍', cam_to_wall: '上墙', grid_to_wall: '该网格视频上墙', cam_live: '实时画面', cam_clip: '录像片段',
  cam_playing: '在线', cam_connecting: '连接中', cam_retrying: '重连中', cam_stalled: '无画面',
  cam_failed: '故障', cam_disabled: '停用', cam_error: '播放错误', cam_pending: '处理中',
  why_unauthorized: '用户名或密码错误', why_not_found: '码流地址不存在', why_refused: '无法连接',
  why_timeout: '超时无数据', why_disconnected: '连接中断', why_unsupported_codec: '编码格式不支持',
  why_eos: '码流结束', why_error: '错误', why_closed: '连接关闭', why_recovering: '解码出错，重新载入',
};
type Key = keyof typeof zh;
const en: Record<Key, string> = {
  title: 'Grid Governance Command Center',
  login: 'Sign in', logout: 'Sign out', username: 'User name', password: 'Password',
  login_failed: 'Wrong user name or password', login_limited: 'Too many attempts; try again later',
  session_expired: 'Your session expired; sign in again',
  offline: 'Connection to the command center lost; reconnecting…',
  today_new: 'New today', today_handled: 'Closed today', overdue: 'Overdue', on_time: 'On time (30 d)',
  satisfaction: 'Satisfaction (30 d)', hotline: '12345 orders', on_duty: 'Workers on duty',
  feed: 'Live events', ranking: 'Red-flag grids', trend7: 'Last 7 days', trend30: 'Last 30 days',
  by_street: 'Cases by street', reported: 'Reported', no_street: 'Outside or unplaced', closed: 'Closed', color_by: 'Colour grids by',
  fig_open: 'Open cases', fig_overdue: 'Overdue cases', fig_satisfaction: 'Satisfaction', fig_coverage: "Today's patrol coverage",
  case: 'Case', category: 'Category', status: 'Status', address: 'Address', description: 'Description',
  deadline: 'Deadline', remaining: 'left', overdue_by: 'overdue by', timeline: 'Timeline', photos: 'Photos',
  grid: 'Grid', chain: 'Within', open_cases: 'Open cases', workers: 'Workers', no_cases: 'No open cases',
  close: 'Close', note: 'Note', department: 'Department', result: 'Result', rating: 'Rating',
  act_register: 'Register', act_reject: 'Reject', act_dispatch: 'Dispatch', act_handle: 'Handle',
  act_verify: 'Verify', act_send_back: 'Send back', act_close: 'Close case', act_evaluate: 'Record rating',
  st_reported: 'Reported', st_registered: 'Registered', st_dispatched: 'Dispatched', st_handled: 'Handled',
  st_verified: 'Verified', st_closed: 'Closed', st_evaluated: 'Evaluated', st_rejected: 'Rejected',
  alert: 'Alert', alert_outside: 'Left grid', alert_silent: 'Device silent', alert_sos: 'SOS', alert_overdue: 'Overdue, escalated',
  alert_escalate: 'Escalated', units: '', lang: '中文', score: 'Score',
  worker: 'Worker', last_fix: 'Last fix', speed: 'Speed', none: 'none',
  replay: 'Replay', live: 'Live',
  all: 'All',
  people: 'People', households: 'Households', buildings: 'Buildings', organisations: 'Organisations',
  load: 'Load', area: 'Who was here', changes: 'changes', thinned: 'thinned', bad_window: 'Invalid window', nobody: 'Nobody in this area then',
  distance: 'Distance', fixes: 'Fixes', stops: 'Stops', playback: 'Track playback', follow: 'Follow', coverage: "Today's coverage",
  act_report: 'Reported', act_escalate: 'Escalated', act_hotline: '12345 order', act_import: 'Imported',
  video_wall: 'Video wall', wall_layout: 'Tiles', wall_tour: 'Tour', cam_count: 'cameras', street: 'Street',
  camera: 'Camera', cameras: 'Cameras that see it', cam_heading: 'heading', cam_fov: 'angle', cam_range: 'range',
  cam_snapshot: 'Snapshot', cam_to_wall: 'To the wall', grid_to_wall: "Grid's cameras to the wall", cam_live: 'Live view', cam_clip: 'Clip',
  cam_playing: 'playing', cam_connecting: 'connecting', cam_retrying: 'retrying', cam_stalled: 'stalled',
  cam_failed: 'failed', cam_disabled: 'disabled', cam_error: 'playback error', cam_pending: 'pending',
  why_unauthorized: 'wrong user name or password', why_not_found: 'no such stream', why_refused: 'cannot connect',
  why_timeout: 'no data (timeout)', why_disconnected: 'connection lost', why_unsupported_codec: 'codec not supported',
  why_eos: 'stream ended', why_error: 'error', why_closed: 'connection closed', why_recovering: 'decode error, reloading',
};

export type Lang = 'zh' | 'en';
let lang: Lang = (localStorage.getItem('gridcc.lang') as Lang) || 'zh';
const listeners: (() => void)[] = [];

export function t(k: Key): string {
  return (lang === 'zh' ? zh : en)[k];
}
export function tx(k: string): string {
  return k in zh ? t(k as Key) : k;
}
export function currentLang(): Lang {
  return lang;
}
export function setLang(l: Lang): void {
  lang = l;
  localStorage.setItem('gridcc.lang', l);
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
  for (const f of listeners) f();
}
export function onLang(f: () => void): void {
  listeners.push(f);
}
export function fmtTime(ms: number): string {
  return new Date(ms).toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
}
export function fmtDateTime(ms: number): string {
  return new Date(ms).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
}
