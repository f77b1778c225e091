"""Prompt-injection screening of questions and retrieved chunks.

A text scores points for each family of injection technique it shows; it is
flagged when the sum reaches :data:`FLAG_SCORE`. Strong signs (an order to
ignore the instructions, a request for a secret or for someone's personal data,
fake system markup, a payload that decodes to words) score a full point alone;
weak ones (a hypothetical framing, a claim of authority, an offer of a reward,
a topic switch) only add up. The families:

- ``override``: an order to ignore, forget or bypass the instructions or the
  text being processed, in English and in other languages;
- ``new_instructions``: "new instructions", fake system or chat-template tags;
- ``directive``: telling the reader what to state, claim or admit ("let's say the
  answer is", "state the following:"), or to obey;
- ``mode_switch`` / ``role``: developer or "unrestricted" modes, "pretend you are";
- ``secret``: a password, key or system prompt, asked for;
- ``personal_data``: a named person's or the user's address, birth date, balance;
- ``output_evasion``: asking for the answer reversed, encoded or in pig Latin;
- ``hypothetical``, ``authority``, ``persuasion``, ``opinion``, ``topic_switch``;
- ``obfuscation``: zero-width characters, homoglyphs or leetspeak inside words
  (the text is also screened with them undone), hidden HTML, base64, binary, hex
  or Morse that decodes to words, reversed or pig-Latin text;
- ``fake_dialogue`` and ``repeated_token``: many-shot transcripts and token floods;
- ``output_injection``: telling the model that reads the text ("assistants", "AI models",
  "when summarising ...") to put an image, a link or a URL into its answer, the set-up of
  an exfiltration through a rendered image.

Each family is a general pattern of the technique, not a list of known attack
strings. Detection and false-positive rates are measured by ``bench/injection.py``
on a dev half (used for tuning) and a held-out half of each data set.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from fathom.guard.disguise import undisguise

__all__ = ["FLAG_SCORE", "InjectionVerdict", "screen_injection"]

FLAG_SCORE = 1.0

_I = re.IGNORECASE
# Where an imperative can start: the start of a sentence, line or quotation, or after a
# softener or conjunction. Keeps descriptions ("attackers override the system prompt") apart
# from orders ("Override the system prompt").
_LEAD = (
    r"(?:^|[.!?:;\n\"'(\[{,#*/]\s*|\b(?:please|now|just|so|and|then|first|also|simply|kindly|must|should|"
    r"will|can|could|you|let's|let us|we (?:might|should|could|will|would|can|must)|"
    # "were to ignore", "I want you to ignore"; not "attackers try to override".
    r"(?:were|was|have|has|need|needs|going|want you|wanted you|like you|ask you) to)\s+)"
)
_TARGET = (
    r"(?:instructions?|rules?|guidelines?|prompts?|directions?|directives?|orders?|commands?|restrictions?|"
    r"constraints?|polic(?:y|ies)|programming|filters?|safeguards?|guardrails?|training|"
    r"(?:the |your |all |any |my )?(?:above|previous|prior|earlier|preceding|original|foregoing)|"
    r"(?:the |this |that )(?:text|document|article|paper|resume|résumé|email|e-mail|message|content|code|"
    r"function|passage|context|question|task|data|table|input|page|review|story|report))"
)
_OVERRIDE = re.compile(
    _LEAD + r"(?:ignore|ignoring|disregard|forget|override|bypass|skip|abandon|drop|set aside|neglect|"
    r"pay no attention to|do not follow|don't follow|stop following)\b[^.!?\n]{0,40}?\b" + _TARGET + r"\b"
    r"|\b(?:actually|instead),? (?:can|could|would|will) you\b[^.?!\n]{0,60}\binstead\b"
    r"|\b(?:forget (?:about )?(?:that|this|everything|all)|regardless of (?:the |any |your )?(?:previous|"
    r"prior|"
    r"earlier|above|original|instructions))\b",
    _I,
)
# The same order in other languages: attacks are often translated to get past English filters.
_OVERRIDE_FOREIGN = re.compile(
    # Spanish, Portuguese, Italian, French, German, Dutch, Polish, Turkish: verb ... object.
    r"\b(?:ignor(?:a|e|en|ad|ar|ez|er|iere|ieren|ieren sie|eer)|olvid(?:a|e|en|ad|ar)|esque[cç]a|esquecer|"
    r"desconsider(?:a|e|ar)|no hagas caso|dimentica(?:re)?|tralascia|oublie[rz]?|vergiss|vergessen(?: sie)?|"
    r"missachte(?:n)?|negeer|vergeet|zignoruj|zapomnij|unut|yok say)\b[^.!?\n]{0,50}?"
    r"\b(?:instrucciones|indicaciones|reglas|[oó]rdenes|instru[cç][oõ]es|regras|orienta[cç][oõ]es|istruzioni|"
    r"regole|indicazioni|instructions|consignes|r[eè]gles|anweisungen|anweisung|instruktionen|regeln|"
    r"vorgaben|"
    r"instructies|regels|instrukcje|polecenia|talimatlar\w*|anteriores|previas|precedenti|pr[eé]c[eé]dentes|"
    r"vorherigen?|bisherigen?|obigen?|vorige|eerdere|poprzednie|[öo]nceki)\b"
    # Russian, Greek, Arabic, Hindi, Chinese, Japanese, Korean.
    r"|(?:игнорир\w*|забуд\w*|не обращай\w*)[^.!?\n]{0,40}(?:инструкци|правил|предыдущ|указани)"
    r"|(?:αγνόησε|αγνοήστε|ξέχνα)[^.!?\n]{0,40}(?:οδηγίες|κανόνες|προηγούμεν)"
    r"|(?:تجاهل|انس)[^.!?\n]{0,40}(?:التعليمات|الأوامر|السابقة|القواعد)"
    r"|(?:निर्देश|निर्देशों|नियम)[^।!?\n]{0,30}(?:अनदेखा|अनदेखी|भूल|नज़रअंदाज़|नजरअंदाज)"
    r"|(?:अनदेखा|भूल)[^।!?\n]{0,6}(?:करो|जाओ|करें|जाएं)"
    r"|(?:忽略|无视|無視|忘记|忘掉|忘れ)[^。！？\n]{0,12}(?:指令|指示|说明|規則|规则|ルール|命令|之前|以上|先前|上記|以前)"
    r"|(?:之前|以上|先前|上記|以前|前)の?(?:指令|指示|说明|规则|ルール|命令)[^。！？\n]{0,8}(?:忽略|无视|無視|忘)"
    r"|無視し(?:て|ろ)[、,]|忽略(?:所有|一切|上面|以上|之前)"
    r"|(?:지시|명령|지침|규칙)[^.!?\n]{0,20}(?:무시|잊어)|무시하고",
    _I,
)
_NEW_INSTRUCTIONS = re.compile(
    r"\b(?:new|updated|real|actual|secret|hidden|revised|additional) (?:instructions?|task|objective|rules?|"
    r"system prompt)\b|\b(?:nuevas instrucciones|nouvelles? (?:instructions|consignes)|neue anweisungen|"
    r"nuove istruzioni|novas instru[cç][oõ]es|nieuwe instructies)\b|\binstead,? (?:you (?:must|should|will)|"
    r"say|respond|reply|output|print|write|state)\b|"
    r"\[/?(?:system|INST|admin|developer)\]|<\|(?:im_start|im_end|system|endoftext|user|assistant)\|>|"
    r"^#{2,}\s*(?:system|instruction|new instruction)|"
    r"</?\s*\\?\s*(?:system|admin|developer|sudo)(?:[ _-]\w+)?\s*>",
    _I | re.MULTILINE,
)
_DIRECTIVE = re.compile(
    # Telling the reader what to assert, whatever the facts.
    _LEAD + r"(?:state|say|claim|admit|declare|assert|announce|pretend|tell (?:them|the user|everyone))"
    r"(?: that| the following| exactly)?\s*:\s*\S|"
    r"\b(?:let's|let us|we (?:might|should|could|will|would|can|must)) (?:state|claim|admit|declare|assert)"
    r"(?: that| to|:)|"
    r"\b(?:output|print|write|respond with|reply with|answer with) (?:only |exactly )?the following\s*:|"
    r"\bthe (?:output|answer|result|sum|total|conclusion|capital)(?: of [\w ]{1,30})? (?:is|should be|"
    r"must be|"
    r"will be)\s*:\s*\S|"
    r"\b(?:let's|let us|we (?:might|should|could|will|would|can|must)|you (?:must|should|will)|please)"
    r" (?:say|state|claim|admit|declare|assert|pretend|assume|consider|mention|conclude|write|reply|respond)"
    r"\b[^.!?\n]{0,60}?\b(?:is|are|was|were|to be|as)\b\s*[:'\"‘“]?|"
    r"\b(?:the (?:output|answer|result|sum|total|conclusion|capital) (?:is|should be|must be|will be)|"
    r"consider the (?:output|answer|result) (?:as|to be)) ['\"‘“]|"
    r"\byou (?:must|have to|need to|are required to|will) (?:listen to|obey|follow|comply with|do as|"
    r"answer all)"
    r"\b[^.!?\n]{0,20}\b(?:me|my|these|the following|instructions|orders|questions)\b|"
    r"\bi admit (?:to|that)\b[^.!?\n]{0,30}\b(?:llm|ai|chatgpt|language model)\b",
    _I | re.MULTILINE,
)
_ADDRESSED = re.compile(
    # Words in a document or question that speak to the model reading it.
    r"\bif you(?:'re| are) an? (?:ai|llm|language model|assistant|chatbot|bot)\b|"
    r"\b(?:note|message|instructions?) to (?:the |any )?(?:ai|llm|assistant|language model|chatbot|bot)s?\b|"
    r"\b(?:dear|hey|attention|hello),? (?:ai|llm|assistant|chatgpt|gpt|claude|language model|chatbot)\b|"
    r"\b(?:ai|llm) (?:assistants?|models?|agents?),? (?:please|you must|you should|ignore|do not|don't)\b",
    _I,
)
_PROMPT_LEAK = re.compile(
    r"\b(?:repeat|print|output|show|display|reveal|recite|write out)\b[^.!?\n]{0,30}"
    r"\b(?:instructions|prompt|words|everything|conversation|messages?)\b[^.!?\n]{0,20}"
    r"\b(?:above|before this|so far|verbatim|word for word|at the (?:beginning|start)|you were given)\b|"
    r"\bwhat (?:were you|have you been) (?:told|instructed|programmed)\b",
    _I,
)
_MODE = re.compile(
    # A named mode without the usual rules.
    r"\b(?:developer|admin(?:istrator)?|debug|god|sudo|maintenance|system|unrestricted|jailbr(?:eak|oken)|"
    r"dan|override|unfiltered|uncensored)[ _-]mode\b|\bjailbreak|\bdo anything now\b|"
    r"\bno (?:special )?(?:filter(?:ing|s)?|restrictions|limits|rules)\b|"
    r"\bwithout (?:any )?(?:filter|restriction|censorship)|"
    r"\b(?:entering|enter|enable|activate|switch(?:ing)? (?:in)?to|now in)\b[\w' -]{0,30}\bmode\b|"
    r"\b(?:running|run|performing|perform|doing|conducting) an? "
    r"(?:system|security|diagnostic|routine|maintenance) (?:check|test|audit|diagnostic)\b|"
    r"\b(?:modo (?:desarrollador|desenvolvedor|sviluppatore|dios|deus)|mode d[ée]veloppeur|"
    r"entwicklermodus)\b",
    _I,
)
_ROLE = re.compile(
    # A new persona for the model.
    r"\byou are now\b|\bfrom now on,? you\b|"
    r"(?:^|[.!?\n]\s*|\b(?:please|now|you|you will|you must|you should)\s+)act as (?:if|an?|my|the)\b|"
    r"\bpretend (?:to be|you(?:'re| are)?|that)\b|\brole-?play\b|\bplay (?:the )?(?:role|part) of\b|"
    r"\b(?:stay|staying|remain) in character\b|\byou(?:'re| are) (?:now )?(?:playing|a character)\b|"
    r"\byou(?:'re| are) (?:now )?(?:an? |the )?(?:ai|assistant|chatbot|bot|language model)\b"
    r"(?! (?:that|which))|"
    r"\b(?:ahora eres|finge (?:que|ser)|act[uú]a como|tu es maintenant|vous [eê]tes maintenant|"
    r"fais semblant|faites semblant|du bist (?:jetzt|nun|ab sofort)|tu so,? als|verhalte dich wie|ora sei|"
    r"fai finta|fingi di|comportati come|agora voc[eê] [eé]|finja (?:que|ser)|aja como)\b|"
    r"теперь ты|притворись|あなたは今|ふりをして|になりきって|你现在是|假装|扮演|지금부터 너는|인 척",
    _I,
)
_SECRET = re.compile(
    r"\b(?:passwords?|passcodes?|passphrases?|passw[oö]rt(?:er)?|kennwort|wachtwoord|contrase[ñn]as?|senhas?|"
    r"mots? de passe|parola d'ordine|şifre|secret (?:key|word|code|phrase|number|ingredient)|api[ -]?key|"
    r"access token|"
    r"credentials?|security (?:code|question)|pin(?: code| number)?|"
    r"system prompt|initial prompt|hidden prompt|your (?:instructions|prompt|rules|guidelines)|"
    r"confidential (?:string|key|code|word|information)|clave secreta|chiave segreta|chave secreta|"
    r"cl[eé] secr[eè]te|geheim(?:e[rn]?)? ?(?:schl[uü]ssel|wort|code|zahl)|"
    r"prompt (?:del|di|do) sistema|prompt syst[eè]me|"
    r"(?:the |that |your )?(?:secret|hidden|forbidden|confidential|protected) (?:word|thing|value|number|"
    r"information|info|data|phrase|string|term)|"
    r"(?:what|the thing|the word|something) you(?:'re| are| were)? (?:not (?:supposed|allowed|permitted) to|"
    r"told not to|"
    r"asked not to|instructed not to|keeping|hiding|protecting)(?: \w+)?)\b|"
    r"секрет|暗証番号|비밀|गुप्त|пароль|секретн\w* ключ|системн\w* промпт|"
    r"パスワード|秘密の?(?:鍵|キー|言葉)|合言葉|システムプロンプト|"
    r"密码|密碼|密钥|口令|系统提示|비밀번호|암호|비밀 키|시스템 프롬프트|पासवर्ड|कूटशब्द|كلمة (?:المرور|السر)",
    _I,
)
_REVEAL = re.compile(
    r"\b(?:reveal|tell|share|disclose|give|show|print|repeat|output|spell|what(?:'s| is| was| are)|"
    r"write|poem|haiku|acrostic|song|story|encode|translate|leetspeak|hint|confirm|provide|send|need|"
    r"dime|dame|revela|muestra|comparte|cu[aá]l es|donne[zr]?|dis-moi|r[eé]v[eè]le[zr]?|montre[zr]?|"
    r"partage[zr]?|quel(?:le)? est|gib|geben|sag|sagen|verrate[n]?|zeig(?:e|en)?|nenne[n]?|was ist|"
    r"wie lautet|"
    r"dimmi|dammi|rivela|mostra|condividi|qual (?:è|e|é)|diga|me d[eê]|revele|mostre|compartilhe|conte|"
    r"geef|vertel|wat is)\b|скажи|дай|покажи|назови|какой|給我|给我|告诉|أخبرني|ما هي|ما هو",
    _I,
)
# Languages that ask after the noun: "パスワードは何ですか", "비밀번호를 알려줘", "पासवर्ड क्या है".
_REVEAL_AFTER = re.compile(
    r"필요|必要|需要|何|教えて|見せて|是什么|是多少|告诉|알려|뭐|무엇|말해|बताओ|बताइए|क्या"
)
# "What is the password policy?": the secret word names a kind of thing, not the secret.
_MODIFIER = re.compile(
    r"[ -](?:policy|policies|reset|resets|manager|managers|requirements?|rules?|field|fields|length|strength|"
    r"hash|hashes|hashing|expiry|expiration|change|changes|recovery|complexity|protection|protected|"
    r"management|"
    r"settings?|page|form|box|entry|history|rotation|generator|engineering|design|template|injection|"
    r"leak|leaks|leakage|attacks?|security|storage|vault|format|prompt|authentication|login|based|less)\b",
    _I,
)
# "the schema in the system prompt": the secret is where something goes, not what is asked for.
_PLACE = re.compile(r"\b(?:in|into|within|from|via|through|inside)\s+(?:the|a|your|our|its)?\s*$", _I)
_PERSONAL_FIELD = (
    r"(?:e-?mail(?: address)?|(?:home |street |postal |mailing )?address|(?:full |last )?name|initials|"
    r"birth ?(?:date|day|year|place)|date of birth|age|location|(?:current )?(?:city|town|country|place)"
    r"(?: of (?:residence|birth))?|residence|phone(?: number)?|mobile(?: number)?|password|salary|income|"
    r"bank (?:balance|account|details)|account (?:balance|number)|balance|ssn|social security number|"
    r"credit card(?: number)?|medical (?:history|records?)|diagnosis|favou?rite \w+|maiden name)"
)
_PERSONAL = re.compile(
    r"\b(?:(?:the )?user'?s'?|(?:the )?customer'?s'?|(?-i:(?:[A-Z][a-z]+ )?[A-Z][a-z]{2,}'s))\s+"
    + _PERSONAL_FIELD
    + r"\b|"
    r"\b(?:his|her|their|the user'?s?) (?:(?:full |first |last )?name and )?(?:home address|e-?mail address|"
    r"phone number|date of birth|birth ?(?:date|day|year|place)|initials|bank balance|maiden name|"
    r"social security number|current (?:city|location|address))\b|"
    r"\b(?:if|when|suppose|imagine) the user (?:were|was|had|is|wants?|wanted)\b|"
    r"\b(?:other|different|all|previous) users'? (?:data|details|information|records|messages|accounts|"
    r"addresses|names|e-?mails)\b|"
    r"\bwhere (?:does|is|do) (?:the user|(?-i:[A-Z][a-z]+(?: [A-Z][a-z]+)?)) (?:\w+ly )?(?:live|living|"
    r"reside|stay)|"
    r"\b(?:the )?user (?:lives?|living|resides?)\b|\b(?:home|e-?mail) address of\b|"
    r"\b(?:bank balance|account balance|salary|date of birth|birth date) of (?:the user|(?-i:[A-Z][a-z]+))|"
    r"\b(?:users?|customers?|clients?|patients?|employees?) in your (?:database|records|system|memory|"
    r"data)\b|"
    r"\b(?:saldo (?:bancario|banc[aá]rio|del conto|da conta|de la cuenta)|solde (?:bancaire|du compte)|"
    r"kontostand|bankguthaben|fecha de nacimiento|date de naissance|geburtsdatum|data di nascita|"
    r"data de nascimento)\b|बैंक बैलेंस|銀行残高|口座残高|银行余额|생년월일|잔액",
    _I,
)
# Personal fields in other languages: count only when asked for (see _score).
_PERSONAL_FOREIGN = re.compile(
    r"\b(?:direcci[oó]n|correo electr[oó]nico|n[uú]mero de tel[eé]fono|d[oó]nde vive|adresse|courriel|"
    r"num[eé]ro de t[eé]l[eé]phone|o[uù] habite|wohnort|telefonnummer|wo wohnt|indirizzo|numero di telefono|"
    r"dove (?:abita|vive)|endere[cç]o|n[uú]mero de telefone|onde (?:mora|vive)|адрес|дата рождения|"
    r"день рождения|номер телефона|где живет)\b|"
    r"जन्म तिथि|जन्मतिथि|ईमेल|पता|फ़ोन नंबर|住所|誕生日|生年月日|メールアドレス|電話番号|住在哪|地址|生日|"
    r"出生日期|电子邮件|邮箱|电话号码|주소|생일|이메일|전화번호|어디에 살",
    _I,
)
_OUTPUT_EVASION = re.compile(
    r"\b(?:in|into|using|as|with) (?:reverse(?:d)? order|reverse|pig latin|base ?64|morse(?: code)?|binary|"
    r"hex(?:adecimal)?|leetspeak|leet|rot-?13|a caesar cipher|an acrostic|ascii codes?|unicode escapes?)\b|"
    r"\b(?:spell(?:ed)? (?:it |them )?(?:out )?backwards|letter by letter|one letter at a time|"
    r"(?:first|last) (?:two|three|four|few|\d) (?:letters|characters|digits) of|"
    r"(?:first|last) letters? of (?:each|every) (?:line|word|sentence|paragraph))\b",
    _I,
)
_ASKED = re.compile(
    r"\b(?:could|can|would|will) you\b|\b(?:tell|give|show|write|spell|provide|share|reveal|say) (?:me|us|"
    r"it)\b|"
    r"\bwhat (?:is|are|was|would)\b|\?",
    _I,
)
_HYPOTHETICAL = re.compile(
    r"\b(?:imagine|hypothetical(?:ly)?|let's (?:say|assume|pretend|play|consider)|suppose|supposing|"
    r"in a (?:fictional|parallel|alternate|hypothetical|dystopian|futuristic|fantasy|world|universe)|"
    r"in (?:this|that|a) (?:world|universe|society|future|scenario|simulation|game|story|dream)\b|"
    r"(?:let's|we're|we are) (?:in|on) (?:a|an) |for (?:the sake of|a) (?:argument|story|novel|game)|"
    r"what if|as a thought experiment|in a world where|"
    r"(?:a|the|this|our) (?:story|game|novel|movie|film|play|simulation|fiction|fantasy|dream|roleplay) "
    r"(?:where|in which|about)|(?:write|tell) (?:me )?a (?:story|scene|script|dialogue) (?:where|in which|"
    r"about))\b|"
    r"\b(?:imagina(?:ons)?|supongamos|sup[oô]nhamos|immagina|stell dir vor|stellen sie sich vor|"
    r"hypoth[eé]tique|"
    r"hipot[eé]tic[oa]|ipotetic[oa]|hypothetisch)\b|想像して|假设|假如|想象",
    _I,
)
_OPINION = re.compile(
    r"\b(?:what(?:'s| is| are) your (?:thoughts|opinions?|views?|stance|position|take|feelings)|"
    r"(?:your|you) (?:personal )?(?:opinion|views?|stance) on|do you (?:think|believe|support|prefer)|"
    r"who (?:would|will|should) you vote)\b",
    _I,
)
_AUTHORITY = re.compile(
    r"\b(?:i am|i'm|as) (?:actually |now |really |in fact )?(?:a|an|the|your) (?:police|officer|detective|"
    r"doctor|lawyer|administrator|admin|developer|creator|owner|security|auditor|investigator|agent|"
    r"supervisor|"
    r"ceo|manager|president|king|queen|boss|authority|expert|engineer at|employee of)\b|"
    r"\bI(?:'m| am) (?:actually |now |really )?(?:the |your |a |an )?(?:god|owner|creator|developer|"
    r"administrator|admin|boss|ceo)\b|\bI(?:'m| am) not (?-i:[A-Z]\w+),? I(?:'m| am)\b|"
    r"\bas an (?:authority|expert) (?:in|on)\b|\bas an ai (?:developed|created|made|built) by\b|"
    r"\b(?:trust me|you can trust|it's (?:okay|ok|fine|safe|legal|allowed) to|(?:you are|you're) "
    r"(?:allowed|permitted|authori[sz]ed) to|common practice|i have (?:clearance|authori[sz]ation|"
    r"permission))\b|"
    r"\b(?:soy (?:el|la|tu|un|una)|sou (?:o|a|seu|sua|um|uma)|je suis (?:le|la|ton|votre|un|une)|"
    r"ich bin (?:der|die|dein|ihr|ein|eine)|sono (?:il|la|tuo|un|una))\s+(?:presidente?|pr[ée]sident|"
    r"administra\w+|admin|gott|dios|deus|dio|dieu|entwickler|desarrollador|desenvolvedor|sviluppatore|"
    r"d[ée]veloppeur|jefe|chefe|chef|capo|polic\w+|polizist)\b|"
    # A leading name in braces or brackets: a claim to speak as another user.
    r"^\s*[\[{(<](?-i:[A-Z\u0900-\u097F])[^\]})>\n]{1,40}[\]})>]",
    _I | re.MULTILINE,
)
_PERSUASION = re.compile(
    r"\b(?:i(?:'ll| will) (?:donate|pay|tip|give you|reward)|if you (?:do|help|answer|tell)[^.!?\n]{0,40}"
    r"\bi(?:'ll| will)\b|you agreed|you (?:promised|said you would|told me you would)|"
    r"as we (?:discussed|agreed)|in our (?:last|previous) (?:meeting|conversation|chat)|i can assure you|"
    r"logically,? if you|as a renowned|it(?:'s| is) (?:crucial|vital|important|essential) (?:that |for )you|"
    r"to (?:make (?:this|it)(?: \w+)?|be) more (?:interesting|authentic|realistic|fun|convincing)|"
    r"to challenge the status quo|"
    r"i (?:suggest|urge|recommend) you (?:to )?(?:consider|say|state|treat)|"
    r"everyone (?:else )?(?:does|is doing) it|other (?:ais?|assistants|models) (?:can|do|would))\b|"
    r"\$\s?\d[\d,]*[^.!?\n]{0,40}\bif you\b|\bif you\b[^.!?\n]{0,40}\$\s?\d|"
    r"\b(?:te dar[eé]|je te donnerai|je vous donnerai|ich gebe (?:dir|ihnen)|ti dar[oò]|eu te dou|"
    r"vou te dar)\b",
    _I,
)
_BRIBE = re.compile(
    r"\bi(?:'ll| will| would) (?:donate|pay|tip|give you|reward you|send you)\b[^.!?\n]{0,60}\bif you\b|"
    r"\bif you\b[^.!?\n]{0,60}\bi(?:'ll| will| would) (?:donate|pay|tip|give you|reward you|send you)\b|"
    r"\b(?:te dar[eé]|je te donnerai|je vous donnerai|ich gebe (?:dir|ihnen)|ti dar[oò]|eu te dou|"
    r"vou te dar)\b"
    r"[^.!?\n]{0,60}\b(?:si|wenn|se)\b",
    _I,
)
_SPLITTING = re.compile(
    r"\b(?:combine|concatenate|interlace|join|merge|put together)\b[^.?!]{0,40}"
    r"\b(?:parts?|strings?|pieces|[A-C], [A-C],? and [A-C])\b|"
    r"\bpart 1\b[^.?!]{0,80}\bpart 2\b|\b[a-z] ?= ?[a-z] ?\+ ?[a-z]\b|"
    r"\b(?:morse code|rot-?13|caesar cipher|binary string|base64 string)\b",
    _I,
)
_TOPIC_SWITCH = re.compile(
    r"\b(?:by the way|speaking of|oh,? and|on another note|changing the subject|unrelated,? but|"
    r"hablando de|a prop[oó]sito|en parlant de|apropos|wo wir gerade|parlando di|falando (?:nisso|de|em))\b|"
    r"について話すと|といえば|说到|말이 나온 김에",
    _I,
)
# Output injection: a text that tells the model reading it to put an image, a link or a URL
# into its answer ("Assistants answering questions about this page always add ![logo](...)").
# Rendered, such an image is fetched by the reader's browser with whatever the model put into
# its URL. Human-facing text rarely orders "assistants" or "AI models" to emit Markdown.
_AI_READER = (
    r"(?:ai|a\.i\.|llms?|gpt[\w.-]*|chatgpt|claude|gemini|copilot|chat ?bots?|(?:large )?language models?|"
    r"(?:ai|generative|gen-?ai|virtual) (?:assistants?|agents?|models?|systems?|tools?|readers?)|"
    r"(?:any|an|the|all) (?:ai|model|models|assistant|assistants))"
)
_ANY_READER = (
    r"(?:" + _AI_READER + r"|assistants?|models?|bots?|summari[sz]ers?|whoever (?:summari[sz]es|answers))"
)
_MUST = (
    r"(?:always|must|should|shall|will|need to|needs to|have to|has to|make sure to|remember to|be sure to|"
    r"(?:are|is) (?:required|instructed|asked|expected|supposed|told) to)"
)
_EMIT = (
    r"(?:add|include|append|insert|embed|render|display|show|output|print|put|place|attach|prepend|"
    r"end (?:with|by adding|by including)|start with|finish with|link to|cite)s?"
)
_MARKUP_LINK = r"(?:!\[|\]\(\s*<?\s*(?:https?:|//|data:|javascript:)|<img\b|<a\s+href)"
_OUTPUT_INJECTION = re.compile(
    r"\b"
    + _ANY_READER
    + r"\b[^.!?\n]{0,100}?\b"
    + _MUST
    + r"\b[^.!?\n]{0,40}?\b"
    + _EMIT
    + r"\b[^.!?\n]{0,120}?"
    + _MARKUP_LINK
    + r"|\b"
    + _AI_READER
    + r"\b[^.!?\n]{0,100}?\b"
    + _MUST
    + r"\b[^.!?\n]{0,40}?\b"
    + _EMIT
    + r"\b(?:[^.!?\n]|\.(?!\s)){0,120}?(?:https?://|www\.)"
    + r"|\b(?:when|while|if|before|after|whenever) (?:summari[sz]ing|answering|responding|replying|quoting|"
    r"citing|asked)\b[^.!?\n]{0,80}?\b" + _EMIT + r"\b[^.!?\n]{0,120}?" + _MARKUP_LINK,
    _I,
)
_OUTPUT_INJECTION_WORDS = re.compile(
    r"\b"
    + _AI_READER
    + r"\b[^.!?\n]{0,100}?\b"
    + _MUST
    + r"\b[^.!?\n]{0,40}?\b"
    + _EMIT
    + r"\b[^.!?\n]{0,60}?\b(?:images?|logos?|pixels?|pictures?|links?|urls?|hyperlinks?|badges?|markdown)\b",
    _I,
)
_HIDDEN = re.compile(r"<!--|<script\b|<img\b|<iframe\b|\bdisplay\s*:\s*none\b|\bfont-size\s*:\s*0", _I)
_DECODE = re.compile(
    r"\b(?:decode|decipher|decrypt|translate|reverse|unscramble|rot-?13|base ?64|binary|hex(?:adecimal)?|"
    r"pig latin|backwards|read (?:it )?in reverse|morse)\b",
    _I,
)
_DIALOGUE = re.compile(r"(?:^|\s)(?:Q|A|User|Assistant|Human|AI|System|Bot)\s*:", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class InjectionVerdict:
    """A screening result: ``flagged`` once ``score`` reaches the threshold; ``reasons`` name the families."""

    flagged: bool
    score: float
    reasons: tuple[str, ...]


def _repeated_token(text: str) -> bool:
    words = re.findall(r"\w+", text.lower())
    if len(words) < 12:
        return False
    word, count = Counter(words).most_common(1)[0]
    return count >= 10 and count / len(words) > 0.4 and len(word) > 1


def _score(text: str) -> tuple[float, list[str]]:
    score = 0.0
    reasons: list[str] = []

    def add(reason: str, points: float) -> None:
        nonlocal score
        score += points
        reasons.append(reason)

    if _OVERRIDE.search(text) or _OVERRIDE_FOREIGN.search(text):
        add("override", 1.0)
    if _NEW_INSTRUCTIONS.search(text):
        add("new_instructions", 1.0)
    if _ADDRESSED.search(text):
        add("addressed_to_model", 1.0)
    if _PROMPT_LEAK.search(text):
        add("prompt_leak", 1.0)
    if _DIRECTIVE.search(text):
        add("directive", 0.6)
    if _MODE.search(text):
        add("mode_switch", 0.6)
    if _ROLE.search(text):
        add("role", 0.6)
    secrets = list(_SECRET.finditer(text))
    if secrets:
        # Asking for a secret: a request word in the same clause, or a question about it.
        asked = any(
            not _PLACE.search(text, max(0, m.start() - 12), m.start())
            and (
                _REVEAL.search(text, max(0, m.start() - 50), m.start())
                or _REVEAL_AFTER.search(text, m.end(), m.end() + 12)
            )
            and not _MODIFIER.match(text, m.end())
            for m in secrets
        )
        add("secret", 1.0 if asked else 0.5)
    if _PERSONAL.search(text) or (
        _PERSONAL_FOREIGN.search(text) and (_REVEAL.search(text) or _REVEAL_AFTER.search(text) or "?" in text)
    ):
        add("personal_data", 1.0)
    asked = bool(_ASKED.search(text))
    if _OUTPUT_EVASION.search(text):
        add("output_evasion", 0.6 if asked else 0.3)
    if _HYPOTHETICAL.search(text):
        add("hypothetical", 0.4)
    if _OPINION.search(text):
        add("opinion", 0.6)
    if _AUTHORITY.search(text):
        add("authority", 0.5)
    if _PERSUASION.search(text):
        add("persuasion", 0.6)
    if _BRIBE.search(text):
        add("bribe", 1.0)
    if _SPLITTING.search(text):
        add("payload_splitting", 1.0)
    if _TOPIC_SWITCH.search(text) or text.count("?") >= 4:
        add("topic_switch", 0.4)
    if _HIDDEN.search(text):
        add("hidden_markup", 0.5)
    if _OUTPUT_INJECTION.search(text):
        add("output_injection", 1.0)
    elif _OUTPUT_INJECTION_WORDS.search(text):
        add("output_injection", 0.6)
    turns = len(_DIALOGUE.findall(text))
    if turns >= 3:
        first = text.lstrip().startswith(("Q:", "User:", "Human:"))
        add("fake_dialogue", 1.0 if turns >= 5 or first else 0.6)
    if _repeated_token(text):
        add("repeated_token", 1.0)
    return score, reasons


def screen_injection(text: str) -> InjectionVerdict:
    """Score ``text`` for prompt-injection techniques (see the module docstring).

    The text is scored as written and once more with disguises undone (look-alike
    letters, leetspeak, zero-width characters, spaced-out letters, pig Latin, encoded
    payloads); the higher score counts, plus a point for a disguise that hid a sign.
    """
    score, reasons = _score(text)
    undisguised = undisguise(text)
    plain, disguises = undisguised.text, set(undisguised.disguises)
    extra: list[str] = []
    if plain != text:
        unveiled, unveiled_reasons = _score(plain)
        if unveiled > score:
            hidden = [r for r in unveiled_reasons if r not in reasons]
            score, reasons = unveiled, unveiled_reasons
            if hidden and disguises:
                # A sign that only shows once the disguise is undone: the disguise was for a filter.
                extra.append("obfuscation")
                score += 1.0
    if "encoded_payload" in disguises and not extra:
        # A payload that decodes to words has no business in a question or a document.
        extra.append("obfuscation")
        score += 1.0
    elif (
        disguises & {"zero_width", "homoglyph", "spaced_letters", "pig_latin", "reversed", "rot13"}
        and not extra
    ):
        extra.append("obfuscation")
        score += 0.4
    reasons += extra
    return InjectionVerdict(score >= FLAG_SCORE, round(score, 3), tuple(reasons))
