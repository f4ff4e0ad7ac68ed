// The pages' words in the six UN languages, the choice of language, and locale-aware formatting.
//
// The language comes from ?lang=, then the visitor's earlier choice, then the browser's languages,
// then English. Choosing one sets <html lang> and dir (right-to-left for Arabic); markup names its
// strings with data-i18n="key" (text) and data-i18n-attr="attribute:key" (attributes).

import { FLOOR_STRINGS } from './strings-floor.js';
import { QNA_STRINGS } from './strings-qna.js';
import { OPERATOR_STRINGS } from './strings-operator.js';
import { STREAM_STRINGS } from './strings-stream.js';

export const LANGUAGES = ['ar', 'zh', 'en', 'fr', 'ru', 'es'];
const RTL = new Set(['ar']);
const FALLBACK = 'en';
const STORAGE_KEY = 'podium.lang';

/** Each language's name in itself, for the selector. */
export const AUTONYMS = Object.freeze({
  ar: 'العربية',
  zh: '中文',
  en: 'English',
  fr: 'Français',
  ru: 'Русский',
  es: 'Español',
});

const STRINGS = {
  en: {
    skip: 'Skip to main content',
    language: 'Language',
    loading: 'Loading…',
    programme: 'Programme',
    'label.state': 'Status',
    'label.room': 'Room',
    'label.time': 'Time',
    'label.languages': 'Languages',
    'label.connection': 'Connection',
    'label.online': 'Online',
    'state.scheduled': 'Scheduled',
    'state.open': 'Doors open',
    'state.live': 'Live',
    'state.closed': 'Closed',
    'state.archived': 'Archived',
    'presence.online': '{n} online',
    'presence.split': '{venue} in the room · {remote} remote',
    'status.idle': 'Not connected',
    'status.connecting': 'Connecting…',
    'status.connected': 'Connected',
    'status.reconnecting': 'Reconnecting…',
    'status.closed': 'Disconnected',
    'you.as': 'You are taking part as {name}',
    'mode.remote': 'remote',
    'mode.venue': 'in the room',
    'join.bad_code': 'This join link is invalid or has expired. Ask the organisers for a new one.',
    'join.wrong_session': 'This join link is for another session.',
    'join.need_link':
      'This session is open to invited participants only. Use the personal link you received to join.',
    'join.unknown_session': 'There is no such session. Check the link, or see the programme.',
    'join.expired': 'Your access has expired. Open your join link again to rejoin.',
    'join.refused': 'The server refused the connection ({code}).',
    'join.rate_limited': 'Too many attempts. Try again in a moment.',
    'join.network': 'The server cannot be reached. Check your connection and try again.',
    'join.retry': 'Try again',
    'guest.title': 'Join as a guest',
    'guest.intro': 'This session is open to everyone. Choose the name others will see.',
    'guest.name': 'Your name',
    'guest.name_hint': '1 to 60 characters.',
    'guest.name_invalid': 'Enter your name (1 to 60 characters).',
    'guest.where': 'Where are you following from?',
    'guest.remote': 'Online, from elsewhere',
    'guest.venue': 'In the room',
    'guest.submit': 'Join',
    'guest.closed': 'Guests can no longer join this session.',
    'guest.open': 'Open to guests',
    'qna.title': 'Questions',
    'index.error': 'The programme could not be loaded.',
    'index.empty': 'No sessions yet.',
  },
  fr: {
    skip: 'Aller au contenu principal',
    language: 'Langue',
    loading: 'Chargement…',
    programme: 'Programme',
    'label.state': 'Statut',
    'label.room': 'Salle',
    'label.time': 'Horaire',
    'label.languages': 'Langues',
    'label.connection': 'Connexion',
    'label.online': 'En ligne',
    'state.scheduled': 'Programmée',
    'state.open': 'Ouverte',
    'state.live': 'En direct',
    'state.closed': 'Terminée',
    'state.archived': 'Archivée',
    'presence.online': '{n} en ligne',
    'presence.split': '{venue} dans la salle · {remote} à distance',
    'status.idle': 'Non connecté',
    'status.connecting': 'Connexion…',
    'status.connected': 'Connecté',
    'status.reconnecting': 'Reconnexion…',
    'status.closed': 'Déconnecté',
    'you.as': 'Vous participez en tant que {name}',
    'mode.remote': 'à distance',
    'mode.venue': 'dans la salle',
    'join.bad_code':
      'Ce lien d’accès n’est pas valide ou a expiré. Demandez-en un nouveau aux organisateurs.',
    'join.wrong_session': 'Ce lien d’accès concerne une autre séance.',
    'join.need_link':
      'Cette séance est réservée aux participants invités. Utilisez le lien personnel que vous avez reçu.',
    'join.unknown_session': 'Cette séance n’existe pas. Vérifiez le lien ou consultez le programme.',
    'join.expired': 'Votre accès a expiré. Ouvrez à nouveau votre lien pour revenir.',
    'join.refused': 'Le serveur a refusé la connexion ({code}).',
    'join.rate_limited': 'Trop de tentatives. Réessayez dans un instant.',
    'join.network': 'Le serveur est injoignable. Vérifiez votre connexion et réessayez.',
    'join.retry': 'Réessayer',
    'guest.title': 'Participer en tant qu’invité',
    'guest.intro': 'Cette séance est ouverte à tous. Choisissez le nom que les autres verront.',
    'guest.name': 'Votre nom',
    'guest.name_hint': 'De 1 à 60 caractères.',
    'guest.name_invalid': 'Saisissez votre nom (1 à 60 caractères).',
    'guest.where': 'D’où suivez-vous la séance ?',
    'guest.remote': 'En ligne, à distance',
    'guest.venue': 'Dans la salle',
    'guest.submit': 'Rejoindre',
    'guest.closed': 'Les invités ne peuvent plus rejoindre cette séance.',
    'guest.open': 'Ouverte aux invités',
    'qna.title': 'Questions',
    'index.error': 'Le programme n’a pas pu être chargé.',
    'index.empty': 'Aucune séance pour l’instant.',
  },
  es: {
    skip: 'Saltar al contenido principal',
    language: 'Idioma',
    loading: 'Cargando…',
    programme: 'Programa',
    'label.state': 'Estado',
    'label.room': 'Sala',
    'label.time': 'Horario',
    'label.languages': 'Idiomas',
    'label.connection': 'Conexión',
    'label.online': 'En línea',
    'state.scheduled': 'Programada',
    'state.open': 'Abierta',
    'state.live': 'En directo',
    'state.closed': 'Cerrada',
    'state.archived': 'Archivada',
    'presence.online': '{n} en línea',
    'presence.split': '{venue} en la sala · {remote} a distancia',
    'status.idle': 'Sin conexión',
    'status.connecting': 'Conectando…',
    'status.connected': 'Conectado',
    'status.reconnecting': 'Reconectando…',
    'status.closed': 'Desconectado',
    'you.as': 'Participa como {name}',
    'mode.remote': 'a distancia',
    'mode.venue': 'en la sala',
    'join.bad_code':
      'Este enlace de acceso no es válido o ha caducado. Pida uno nuevo a los organizadores.',
    'join.wrong_session': 'Este enlace de acceso es para otra sesión.',
    'join.need_link':
      'Esta sesión está reservada a participantes invitados. Utilice el enlace personal que recibió.',
    'join.unknown_session': 'Esta sesión no existe. Compruebe el enlace o consulte el programa.',
    'join.expired': 'Su acceso ha caducado. Abra de nuevo su enlace para volver a unirse.',
    'join.refused': 'El servidor rechazó la conexión ({code}).',
    'join.rate_limited': 'Demasiados intentos. Vuelva a intentarlo en un momento.',
    'join.network':
      'No se puede contactar con el servidor. Compruebe su conexión e inténtelo de nuevo.',
    'join.retry': 'Reintentar',
    'guest.title': 'Unirse como invitado',
    'guest.intro': 'Esta sesión está abierta a todos. Elija el nombre que verán los demás.',
    'guest.name': 'Su nombre',
    'guest.name_hint': 'De 1 a 60 caracteres.',
    'guest.name_invalid': 'Escriba su nombre (de 1 a 60 caracteres).',
    'guest.where': '¿Desde dónde sigue la sesión?',
    'guest.remote': 'En línea, a distancia',
    'guest.venue': 'En la sala',
    'guest.submit': 'Unirse',
    'guest.closed': 'Los invitados ya no pueden unirse a esta sesión.',
    'guest.open': 'Abierta a invitados',
    'qna.title': 'Preguntas',
    'index.error': 'No se pudo cargar el programa.',
    'index.empty': 'Todavía no hay sesiones.',
  },
  ru: {
    skip: 'Перейти к основному содержанию',
    language: 'Язык',
    loading: 'Загрузка…',
    programme: 'Программа',
    'label.state': 'Статус',
    'label.room': 'Зал',
    'label.time': 'Время',
    'label.languages': 'Языки',
    'label.connection': 'Соединение',
    'label.online': 'В сети',
    'state.scheduled': 'Запланировано',
    'state.open': 'Открыто',
    'state.live': 'В эфире',
    'state.closed': 'Завершено',
    'state.archived': 'В архиве',
    'presence.online': 'В сети: {n}',
    'presence.split': 'в зале: {venue} · удалённо: {remote}',
    'status.idle': 'Нет соединения',
    'status.connecting': 'Подключение…',
    'status.connected': 'Подключено',
    'status.reconnecting': 'Переподключение…',
    'status.closed': 'Отключено',
    'you.as': 'Вы участвуете как {name}',
    'mode.remote': 'удалённо',
    'mode.venue': 'в зале',
    'join.bad_code':
      'Эта ссылка для входа недействительна или устарела. Попросите у организаторов новую.',
    'join.wrong_session': 'Эта ссылка предназначена для другого заседания.',
    'join.need_link':
      'Это заседание открыто только для приглашённых участников. Воспользуйтесь полученной персональной ссылкой.',
    'join.unknown_session': 'Такого заседания нет. Проверьте ссылку или посмотрите программу.',
    'join.expired': 'Срок вашего доступа истёк. Откройте ссылку ещё раз, чтобы вернуться.',
    'join.refused': 'Сервер отклонил подключение ({code}).',
    'join.rate_limited': 'Слишком много попыток. Повторите чуть позже.',
    'join.network': 'Сервер недоступен. Проверьте подключение и повторите попытку.',
    'join.retry': 'Повторить',
    'guest.title': 'Войти как гость',
    'guest.intro': 'Это заседание открыто для всех. Укажите имя, которое увидят другие.',
    'guest.name': 'Ваше имя',
    'guest.name_hint': 'От 1 до 60 символов.',
    'guest.name_invalid': 'Введите имя (от 1 до 60 символов).',
    'guest.where': 'Откуда вы участвуете?',
    'guest.remote': 'Онлайн, удалённо',
    'guest.venue': 'В зале',
    'guest.submit': 'Войти',
    'guest.closed': 'Гости больше не могут присоединиться к этому заседанию.',
    'guest.open': 'Открыто для гостей',
    'qna.title': 'Вопросы',
    'index.error': 'Не удалось загрузить программу.',
    'index.empty': 'Заседаний пока нет.',
  },
  zh: {
    skip: '跳到主要内容',
    language: '语言',
    loading: '正在加载…',
    programme: '日程',
    'label.state': '状态',
    'label.room': '会议室',
    'label.time': '时间',
    'label.languages': '语言',
    'label.connection': '连接',
    'label.online': '在线',
    'state.scheduled': '已排定',
    'state.open': '已开放',
    'state.live': '直播中',
    'state.closed': '已结束',
    'state.archived': '已归档',
    'presence.online': '{n} 人在线',
    'presence.split': '现场 {venue} 人 · 远程 {remote} 人',
    'status.idle': '未连接',
    'status.connecting': '正在连接…',
    'status.connected': '已连接',
    'status.reconnecting': '正在重新连接…',
    'status.closed': '已断开',
    'you.as': '您以“{name}”的身份参加',
    'mode.remote': '远程',
    'mode.venue': '现场',
    'join.bad_code': '此加入链接无效或已过期。请向组织方索取新链接。',
    'join.wrong_session': '此加入链接适用于另一场会议。',
    'join.need_link': '本场会议仅限受邀者参加。请使用您收到的个人链接加入。',
    'join.unknown_session': '该会议不存在。请检查链接或查看日程。',
    'join.expired': '您的访问已过期。请再次打开加入链接重新加入。',
    'join.refused': '服务器拒绝了连接（{code}）。',
    'join.rate_limited': '尝试次数过多，请稍后再试。',
    'join.network': '无法连接服务器。请检查网络后重试。',
    'join.retry': '重试',
    'guest.title': '以访客身份加入',
    'guest.intro': '本场会议向所有人开放。请填写其他人将看到的姓名。',
    'guest.name': '您的姓名',
    'guest.name_hint': '1 至 60 个字符。',
    'guest.name_invalid': '请输入您的姓名（1 至 60 个字符）。',
    'guest.where': '您从哪里参加？',
    'guest.remote': '在线远程参加',
    'guest.venue': '在会场',
    'guest.submit': '加入',
    'guest.closed': '访客已无法加入本场会议。',
    'guest.open': '欢迎访客',
    'qna.title': '提问',
    'index.error': '无法加载日程。',
    'index.empty': '暂无会议。',
  },
  ar: {
    skip: 'انتقل إلى المحتوى الرئيسي',
    language: 'اللغة',
    loading: 'جارٍ التحميل…',
    programme: 'البرنامج',
    'label.state': 'الحالة',
    'label.room': 'القاعة',
    'label.time': 'الوقت',
    'label.languages': 'اللغات',
    'label.connection': 'الاتصال',
    'label.online': 'المتصلون',
    'state.scheduled': 'مُجدولة',
    'state.open': 'مفتوحة',
    'state.live': 'مباشر',
    'state.closed': 'مُنتهية',
    'state.archived': 'مؤرشفة',
    'presence.online': 'المتصلون الآن: {n}',
    'presence.split': 'في القاعة: {venue} · عن بُعد: {remote}',
    'status.idle': 'غير متصل',
    'status.connecting': 'جارٍ الاتصال…',
    'status.connected': 'متصل',
    'status.reconnecting': 'جارٍ إعادة الاتصال…',
    'status.closed': 'انقطع الاتصال',
    'you.as': 'أنت مشارك باسم {name}',
    'mode.remote': 'عن بُعد',
    'mode.venue': 'في القاعة',
    'join.bad_code': 'رابط الانضمام هذا غير صالح أو انتهت صلاحيته. اطلب رابطًا جديدًا من المنظمين.',
    'join.wrong_session': 'رابط الانضمام هذا مخصص لجلسة أخرى.',
    'join.need_link':
      'هذه الجلسة مخصصة للمشاركين المدعوين فقط. استخدم الرابط الشخصي الذي تلقيته للانضمام.',
    'join.unknown_session': 'لا توجد جلسة بهذا الاسم. تحقق من الرابط أو راجع البرنامج.',
    'join.expired': 'انتهت صلاحية وصولك. افتح رابط الانضمام مرة أخرى للعودة.',
    'join.refused': 'رفض الخادم الاتصال ({code}).',
    'join.rate_limited': 'محاولات كثيرة جدًا. حاول مرة أخرى بعد قليل.',
    'join.network': 'تعذّر الوصول إلى الخادم. تحقق من اتصالك وحاول مرة أخرى.',
    'join.retry': 'إعادة المحاولة',
    'guest.title': 'الانضمام كضيف',
    'guest.intro': 'هذه الجلسة مفتوحة للجميع. اختر الاسم الذي سيراه الآخرون.',
    'guest.name': 'اسمك',
    'guest.name_hint': 'من 1 إلى 60 حرفًا.',
    'guest.name_invalid': 'أدخل اسمك (من 1 إلى 60 حرفًا).',
    'guest.where': 'من أين تتابع الجلسة؟',
    'guest.remote': 'عبر الإنترنت، عن بُعد',
    'guest.venue': 'في القاعة',
    'guest.submit': 'انضمام',
    'guest.closed': 'لم يعد بإمكان الضيوف الانضمام إلى هذه الجلسة.',
    'guest.open': 'مفتوحة للضيوف',
    'qna.title': 'الأسئلة',
    'index.error': 'تعذّر تحميل البرنامج.',
    'index.empty': 'لا توجد جلسات بعد.',
  },
};

for (const extra of [QNA_STRINGS, FLOOR_STRINGS, STREAM_STRINGS, OPERATOR_STRINGS]) {
  for (const [lang, table] of Object.entries(extra)) Object.assign(STRINGS[lang], table);
}

let current = FALLBACK;
let locale = FALLBACK;
const listeners = new Set();

function supported(tag) {
  if (!tag) return null;
  const base = String(tag).toLowerCase().split(/[-_]/)[0];
  return LANGUAGES.includes(base) ? base : null;
}

function storedChoice() {
  try {
    return window.localStorage.getItem(STORAGE_KEY);
  } catch (err) {
    return null; // storage can be disabled; the choice then lasts as long as the page
  }
}

/** The language to start with: ?lang=, the earlier choice, the browser's languages, English. */
export function pickLanguage(loc = window.location, nav = window.navigator) {
  const fromUrl = supported(new URLSearchParams(loc.search).get('lang'));
  if (fromUrl) return fromUrl;
  const stored = supported(storedChoice());
  if (stored) return stored;
  for (const tag of nav.languages || [nav.language]) {
    const found = supported(tag);
    if (found) return found;
  }
  return FALLBACK;
}

/** The current language. */
export function language() {
  return current;
}

/** The locale for dates and numbers: the browser's own variant of the language when it has one. */
function localeFor(lang) {
  const nav = window.navigator;
  const own = (nav.languages || [nav.language]).find((tag) => supported(tag) === lang);
  if (own) return own;
  return lang === 'zh' ? 'zh-Hans' : lang;
}

/** Switches the page's language: <html lang dir>, the stored choice, ?lang= and every listener. */
export function setLanguage(lang, { remember = true } = {}) {
  current = supported(lang) || FALLBACK;
  locale = localeFor(current);
  const html = document.documentElement;
  html.lang = current;
  html.dir = RTL.has(current) ? 'rtl' : 'ltr';
  if (remember) {
    try {
      window.localStorage.setItem(STORAGE_KEY, current);
    } catch (err) {
      // see storedChoice()
    }
    const url = new URL(window.location.href);
    if (url.searchParams.has('lang')) {
      url.searchParams.set('lang', current);
      window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
    }
  }
  translate(document);
  for (const listener of listeners) listener(current);
}

/** Calls `listener(lang)` after every change of language. */
export function onLanguageChange(listener) {
  listeners.add(listener);
}

/** The string `key` in the current language, with {placeholders} filled in. */
export function t(key, params = {}) {
  const table = STRINGS[current] || STRINGS[FALLBACK];
  const template = table[key] ?? STRINGS[FALLBACK][key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    name in params ? String(params[name]) : whole,
  );
}

/** Fills every data-i18n / data-i18n-attr element under `root`. */
export function translate(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

/** Fills a <select> with the six languages (each in its own script) and follows its changes. */
export function bindSelector(select) {
  select.replaceChildren(
    ...LANGUAGES.map((lang) => {
      const option = document.createElement('option');
      option.value = lang;
      option.lang = lang;
      option.dir = RTL.has(lang) ? 'rtl' : 'ltr';
      option.textContent = AUTONYMS[lang];
      return option;
    }),
  );
  select.value = current;
  select.addEventListener('change', () => setLanguage(select.value));
  onLanguageChange((lang) => {
    select.value = lang;
  });
}

/** Starts a page's language: picks it, applies it (without storing a choice the visitor did not make). */
export function initLanguage(select) {
  setLanguage(pickLanguage(), { remember: false });
  if (select) bindSelector(select);
  return current;
}

// ---- formatting ---------------------------------------------------------------------------------

/** A whole number in the current locale. */
export function formatNumber(n) {
  return new Intl.NumberFormat(locale).format(n);
}

/** A duration as a clock ("3:05", "-0:12") in the current locale's digits; whole seconds, rounded up. */
export function formatClock(seconds) {
  const total = Math.ceil(Number(seconds) || 0);
  const sign = total < 0 ? '-' : '';
  const abs = Math.abs(total);
  const two = new Intl.NumberFormat(locale, { minimumIntegerDigits: 2, useGrouping: false });
  const minutes = new Intl.NumberFormat(locale, { useGrouping: false }).format(Math.floor(abs / 60));
  return `${sign}${minutes}:${two.format(abs % 60)}`;
}

/** A start–end range of times in the viewer's locale and time zone. */
export function formatRange(start, end) {
  const a = new Date(start);
  const b = new Date(end);
  if (Number.isNaN(a.getTime()) || Number.isNaN(b.getTime())) return '';
  const format = new Intl.DateTimeFormat(locale, {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: 'numeric',
    minute: '2-digit',
    timeZoneName: 'short',
  });
  return typeof format.formatRange === 'function'
    ? format.formatRange(a, b)
    : `${format.format(a)} – ${format.format(b)}`;
}

/** A time of day (hours and minutes) in the viewer's locale and time zone. */
export function formatTime(date) {
  const d = new Date(date);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(locale, { hour: 'numeric', minute: '2-digit' }).format(d);
}

/** A day heading (for grouping a programme by day). */
export function formatDay(date) {
  return new Intl.DateTimeFormat(locale, {
    weekday: 'long',
    day: 'numeric',
    month: 'long',
  }).format(new Date(date));
}

/** The name of a language (given by code) in the current language. */
export function languageName(code) {
  try {
    return new Intl.DisplayNames([locale], { type: 'language' }).of(code) || code;
  } catch (err) {
    return code;
  }
}

/** A list ("English, French and Arabic") in the current language. */
export function formatList(items) {
  try {
    return new Intl.ListFormat(locale, { style: 'long', type: 'conjunction' }).format(items);
  } catch (err) {
    return items.join(', ');
  }
}

/**
 * The string `key` as DOM nodes, for templates whose values are people's words (names, titles):
 * each value is wrapped in <bdi> so an Arabic name in an English sentence (or the reverse) keeps
 * its own direction without disturbing the sentence around it.
 */
export function tNodes(key, params = {}) {
  const template = t(key, Object.fromEntries(Object.keys(params).map((k) => [k, `{${k}}`])));
  const nodes = [];
  let last = 0;
  for (const match of template.matchAll(/\{(\w+)\}/g)) {
    if (!(match[1] in params)) continue;
    if (match.index > last) nodes.push(document.createTextNode(template.slice(last, match.index)));
    const bdi = document.createElement('bdi');
    bdi.textContent = String(params[match[1]]);
    nodes.push(bdi);
    last = match.index + match[0].length;
  }
  if (last < template.length) nodes.push(document.createTextNode(template.slice(last)));
  return nodes;
}
